// The C++ side of RustyRay's `ray` backend: a thin layer over Ray's C++ worker API.
//
// Driver side, it exposes plain C functions (the `rr_*` below) that the Rust backend calls to
// put and get objects, submit tasks, and create and call actors, always by *registered id*
// (`my_crate::module::function`) and with arguments as postcard bytes.
//
// Worker side, it enters generic entry points in Ray's function tables (`RustyRayTask`,
// `RustyRayActor`, `RustyRayMethod`, and `RustyRayJson` for other languages). Each takes the
// registered id and the arguments as byte strings, and calls into the Rust registry of the
// same library (the `rustyray_worker_*` functions, defined in Rust). Ray resolves an argument
// passed as an object ref before the entry runs, so chains of refs work without RustyRay
// fetching anything itself.
//
// Every object RustyRay puts or returns holds one msgpack string: the value's frame (a header
// naming its type, then its postcard encoding; see rustyray/src/object_store/codec/frame.rs).
//
// Exceptions never cross into Rust (unwinding through `extern "C"` is undefined behaviour):
// each `rr_*` function that can fail catches them and reports the message through an error
// string; those with no error to return (dropping a reference, shutting down) catch them and
// print the message; the string helpers, which only allocate, are `noexcept`, so running out of
// memory there ends the process as it does in Rust.
//
// Must be compiled with -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=0 (the ABI libray_api.so uses).

#include <ray/api.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <set>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

// Two classes of libray_api.so that its headers leave out, declared with just the methods the
// shim calls (non-virtual and exported, so they are called by name): the runtime's view of the
// cluster's state, as Ray's own C++ cluster tests reach it.
namespace ray {
namespace gcs {
class GlobalStateAccessor {
 public:
  std::vector<std::string> GetAllNodeInfo();
};
}  // namespace gcs
namespace internal {
class AbstractRayRuntime {
 public:
  static std::shared_ptr<AbstractRayRuntime> GetInstance();
  const std::unique_ptr<ray::gcs::GlobalStateAccessor> &GetGlobalStateAccessor();
};
}  // namespace internal
}  // namespace ray

namespace {

using ray::internal::RemoteFunctionHolder;
using ray::internal::Serializer;
using ray::internal::TaskArg;

// Ray's API keeps two singletons in header-inline functions: the runtime holder and the
// function manager. A Rust cdylib exports only Rust's own symbols, so the copies compiled
// into this shim would stay private to it: Ray's worker would neither see the entry points
// registered here nor share its runtime with them. So the shim uses libray_api.so's copies,
// found by name.
void *RaySymbol(const char *name) {
  void *found = dlsym(RTLD_DEFAULT, name);
  if (found == nullptr) {
    throw std::runtime_error(std::string("libray_api.so does not export ") + name +
                             " (is ray-cpp the same version as ray?)");
  }
  return found;
}

ray::internal::FunctionManager &Functions() {
  using Instance = ray::internal::FunctionManager &(*)();
  static Instance instance =
      reinterpret_cast<Instance>(RaySymbol("_ZN3ray8internal15FunctionManager8InstanceEv"));
  return instance();
}

std::shared_ptr<ray::internal::RayRuntime> GetRayRuntime() {
  static auto *holder = static_cast<ray::internal::RayRuntimeHolder *>(
      RaySymbol("_ZZN3ray8internal16RayRuntimeHolder8InstanceEvE8instance"));
  auto runtime = holder->Runtime();
  if (!runtime) throw std::runtime_error("Ray is not initialized in this process");
  return runtime;
}

bool RayIsUp() {
  try {
    return ray::IsInitialized();
  } catch (...) {
    return false;
  }
}

}  // namespace

// --- What Rust provides (worker side) -------------------------------------------------------

extern "C" {
// Each returns 0 and writes its result to `out`, or returns nonzero and writes an error
// message to `out`. `args` points to `nargs` (pointer, length) pairs.
struct rr_slice {
  const char *data;
  size_t len;
};
int rustyray_worker_run_task(rr_slice id, const rr_slice *args, size_t nargs, std::string *out);
int rustyray_worker_construct(rr_slice id, const rr_slice *args, size_t nargs, void **state,
                              std::string *error);
int rustyray_worker_call(void *state, rr_slice id, const rr_slice *args, size_t nargs,
                         std::string *out);
void rustyray_worker_drop_actor(void *state);
int rustyray_worker_run_json(rr_slice id, rr_slice json, std::string *out);
}

namespace {

rr_slice Slice(const std::string &s) { return rr_slice{s.data(), s.size()}; }

// Errors raised by RustyRay code travel inside Ray's error messages between markers (see
// rustyray/src/ray/errors.rs), so an error keeps its exact shape however many tasks and
// processes it passes through; a failed argument's record carries its producer's error to the
// task that needed it.

// The bytes inside an object's data: the msgpack string every RustyRay object holds (its
// frame, see rustyray/src/frame.rs), or, for anything else (Ray's record of a failure, stored
// where a value was expected), the data as it is. Rust checks the frame and turns what is not
// one into an error, so nothing here guesses.
// A view of those bytes, read from the msgpack header (str or bin, 8/16/32-bit lengths, or a
// fixstr) without unpacking: an argument of 64 MiB is not copied on its way to Rust.
rr_slice View(const char *data, size_t size) {
  const auto *b = reinterpret_cast<const unsigned char *>(data);
  auto big_endian = [&](size_t from, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len = (len << 8) | b[from + i];
    return len;
  };
  size_t header = 0, len = 0;
  if (size >= 1 && (b[0] & 0xe0) == 0xa0) {
    header = 1, len = b[0] & 0x1f;
  } else if (size >= 2 && (b[0] == 0xd9 || b[0] == 0xc4)) {
    header = 2, len = b[1];
  } else if (size >= 3 && (b[0] == 0xda || b[0] == 0xc5)) {
    header = 3, len = big_endian(1, 2);
  } else if (size >= 5 && (b[0] == 0xdb || b[0] == 0xc6)) {
    header = 5, len = big_endian(1, 4);
  }
  if (header != 0 && header + len == size) return rr_slice{data + header, len};
  return rr_slice{data, size};
}

std::string Contents(const char *data, size_t size) {
  rr_slice view = View(data, size);
  return std::string(view.data, view.len);
}

// The registered id (first argument) and views of the other arguments' bytes, which live as
// long as Ray's buffers (the whole call).
struct Call {
  std::string id;
  std::vector<rr_slice> slices;

  explicit Call(const ray::internal::ArgsBufferList &buffers) {
    if (buffers.empty()) throw std::invalid_argument("a RustyRay entry point got no id");
    id = Contents(buffers[0].data(), buffers[0].size());
    slices.reserve(buffers.size() - 1);
    for (size_t i = 1; i < buffers.size(); i++) {
      slices.push_back(View(buffers[i].data(), buffers[i].size()));
    }
  }
};

msgpack::sbuffer Result(const std::string &bytes) { return Serializer::Serialize(bytes); }

// An actor on a Ray worker: owns the Rust state built by the registered constructor.
class RustActor {
 public:
  explicit RustActor(void *state) : state_(state) {}
  ~RustActor() { rustyray_worker_drop_actor(state_); }
  RustActor(const RustActor &) = delete;
  RustActor &operator=(const RustActor &) = delete;
  void *state() const { return state_; }

 private:
  void *state_;
};

// Runs a remote function: arguments (id, args...).
msgpack::sbuffer RunTask(const ray::internal::ArgsBufferList &buffers) {
  Call call(buffers);
  std::string out;
  if (rustyray_worker_run_task(Slice(call.id), call.slices.data(), call.slices.size(), &out) !=
      0) {
    throw std::runtime_error(out);
  }
  return Result(out);
}

// Builds an actor: arguments (constructor id, args...). Ray keeps the returned pointer and
// hands it to every method call.
msgpack::sbuffer CreateActor(const ray::internal::ArgsBufferList &buffers) {
  Call call(buffers);
  void *state = nullptr;
  std::string error;
  if (rustyray_worker_construct(Slice(call.id), call.slices.data(), call.slices.size(), &state,
                                &error) != 0) {
    throw std::runtime_error(error);
  }
  auto *actor = new RustActor(state);
  return Serializer::Serialize(reinterpret_cast<uint64_t>(actor));
}

// Calls an actor method: arguments (method id, args...).
msgpack::sbuffer CallActor(msgpack::sbuffer *actor_buffer,
                           const ray::internal::ArgsBufferList &buffers) {
  auto address = Serializer::Deserialize<uint64_t>(actor_buffer->data(), actor_buffer->size());
  auto *actor = reinterpret_cast<RustActor *>(address);
  Call call(buffers);
  std::string out;
  if (rustyray_worker_call(actor->state(), Slice(call.id), call.slices.data(),
                           call.slices.size(), &out) != 0) {
    throw std::runtime_error(out);
  }
  return Result(out);
}

// Runs a remote function for another language: (id, JSON array of arguments) -> JSON.
std::string RustyRayJson(std::string id, std::string json) {
  std::string out;
  if (rustyray_worker_run_json(Slice(id), Slice(json), &out) != 0) {
    throw std::runtime_error(out);
  }
  return out;
}

const char kTaskEntry[] = "RustyRayTask";
const char kActorEntry[] = "RustyRayActor";
const char kMethodEntry[] = "RustyRayMethod";

// Enters the entry points in Ray's function tables. The task, constructor and method entries
// take any number of arguments, so they are entered as raw invokers (Ray's typed `RAY_REMOTE`
// would fix their arity and reject a failed argument before RustyRay could report it).
int RegisterEntryPoints() {
  try {
    auto &functions = Functions();
    auto tables = functions.GetRemoteFunctions();
    // The tables are Ray's own (non-const) maps, handed out as const references.
    auto &plain = const_cast<ray::internal::RemoteFunctionMap_t &>(tables.first);
    auto &members = const_cast<ray::internal::RemoteMemberFunctionMap_t &>(tables.second);
    plain.emplace(kTaskEntry, RunTask);
    plain.emplace(kActorEntry, CreateActor);
    members.emplace(kMethodEntry, CallActor);
    functions.RegisterRemoteFunction("RustyRayJson", RustyRayJson);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "rustyray: entry points not registered with Ray: %s\n", e.what());
  }
  return 0;
}

[[maybe_unused]] const int kRegistered = RegisterEntryPoints();

}  // namespace

// --- What Rust calls (driver side, and nested calls inside workers) -------------------------

namespace {

// Error kinds reported to Rust, beside the message.
enum ErrorKind : int {
  kOk = 0,
  kTaskFailed = 1,
  kActorDied = 2,
  kWorkerDied = 3,
  kTimeout = 4,
  kObjectLost = 5,
  kOther = 6,
};

// Ray's exceptions carry the failed object's data as their message, which may be a binary
// record (an actor's death cause, say); `msg_` keeps all of it, where `what()` stops at the
// first zero byte.
template <typename F>
int Guard(std::string *error, F body) {
  try {
    body();
    return kOk;
  } catch (const ray::internal::RayTaskException &e) {
    *error = e.msg_;
    return kTaskFailed;
  } catch (const ray::internal::RayActorException &e) {
    *error = e.msg_;
    return kActorDied;
  } catch (const ray::internal::RayWorkerException &e) {
    *error = e.msg_;
    return kWorkerDied;
  } catch (const ray::internal::RayTimeoutException &e) {
    *error = e.msg_;
    return kTimeout;
  } catch (const ray::internal::UnreconstructableException &e) {
    *error = e.msg_;
    return kObjectLost;
  } catch (const std::exception &e) {
    *error = e.what();
    return kOther;
  } catch (...) {
    *error = "an unknown C++ exception";
    return kOther;
  }
}

// Runs `body` for a call with no error to return: an exception is printed, never thrown on.
template <typename F>
void Quietly(const char *what, F body) noexcept {
  try {
    body();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "rustyray: %s failed: %s\n", what, e.what());
  } catch (...) {
    std::fprintf(stderr, "rustyray: %s failed with an unknown exception\n", what);
  }
}

std::string Str(rr_slice s) { return std::string(s.data, s.len); }

msgpack::sbuffer Pack(rr_slice bytes) {
  // The same encoding a `std::string` result of an entry point gets.
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_str(static_cast<uint32_t>(bytes.len));
  packer.pack_str_body(bytes.data, static_cast<uint32_t>(bytes.len));
  return buffer;
}

// The actors this process created and has not killed.
std::mutex actors_mutex;
std::set<std::string> live_actors;

void ShutdownAtExit() {
  if (!RayIsUp()) return;
  // Killed first: Ray's driver aborts on the death notice of an actor still alive as it
  // disconnects.
  std::set<std::string> actors;
  {
    std::lock_guard<std::mutex> lock(actors_mutex);
    actors.swap(live_actors);
  }
  for (const auto &actor : actors) {
    try {
      GetRayRuntime()->KillActor(actor, true);
    } catch (...) {
    }
  }
  ray::Shutdown();
}

// Disconnects at exit, before the statics Ray's shutdown still uses are destroyed: a process
// that exits connected otherwise aborts in Ray's own exit handler. Registered after the first
// task is sent (which builds those statics), so that it runs before their destructors.
// Drivers only: a worker's connection is Ray's to end (a worker that ran a nested task and then
// exits would otherwise shut Ray down from inside its own exit, which Ray 2.60 answers with a
// logging loop that never ends).
bool is_driver = false;

void DisconnectAtExitAfterFirstTask() {
  if (!is_driver) return;
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(ShutdownAtExit); });
}

// The placement group a task or actor runs in: none when `group` is empty; bundle `bundle`
// (-1: any of its bundles) otherwise.
template <typename Options>
void Place(Options &options, rr_slice group, int bundle) {
  options.bundle_index = -1;
  if (group.len == 0) return;
  options.group = ray::PlacementGroup(Str(group), ray::PlacementGroupCreationOptions{});
  options.bundle_index = bundle;
}

TaskArg ValueArg(rr_slice bytes) {
  TaskArg arg;
  arg.buf = Pack(bytes);
  return arg;
}

}  // namespace

extern "C" {

// One task argument: postcard bytes (`is_ref == 0`) or the binary id of a Ray object.
struct rr_arg {
  int is_ref;
  rr_slice bytes;
};

// One resource demand.
struct rr_resource {
  rr_slice name;
  double amount;
};

std::string *rr_string_new() noexcept { return new std::string(); }
void rr_string_free(std::string *s) noexcept { delete s; }
const char *rr_string_data(const std::string *s) noexcept { return s->data(); }
size_t rr_string_len(const std::string *s) noexcept { return s->size(); }
void rr_string_assign(std::string *s, const char *data, size_t len) noexcept {
  s->assign(data, len);
}


// Connects this process to the cluster at `address` as a driver. `node_ip` (if not empty) is
// the address of this node as the cluster knows it (127.0.0.1 for a local cluster).
int rr_init(rr_slice address, const rr_slice *paths, size_t npaths, rr_slice ray_namespace,
            rr_slice node_ip, rr_slice auth_token, std::string *error) {
  return Guard(error, [&] {
    if (ray::IsInitialized()) return;
    // Ray reads the token from its environment when it first needs it (its mode, only when
    // its library loads: the Rust side checks that): a token given in RustyRay's Config is
    // handed over that way.
    if (auth_token.len > 0) setenv("RAY_AUTH_TOKEN", Str(auth_token).c_str(), 1);
    ray::RayConfig config;
    config.address = Str(address);
    for (size_t i = 0; i < npaths; i++) config.code_search_path.push_back(Str(paths[i]));
    config.ray_namespace = Str(ray_namespace);
    // Ray's C++ API takes the node's address only as a command-line flag.
    std::vector<std::string> flags = {"rustyray"};
    if (node_ip.len > 0) flags.push_back("--ray_node_ip_address=" + Str(node_ip));
    std::vector<char *> argv;
    for (auto &flag : flags) argv.push_back(flag.data());
    argv.push_back(nullptr);
    ray::Init(config, static_cast<int>(flags.size()), argv.data());
    is_driver = true;
  });
}

void rr_shutdown() noexcept {
  Quietly("shutting down Ray", [&] {
    if (ray::IsInitialized()) ray::Shutdown();
  });
}

void rr_add_reference(rr_slice id) noexcept {
  Quietly("adding a reference", [&] {
    if (RayIsUp()) GetRayRuntime()->AddLocalReference(Str(id));
  });
}

void rr_remove_reference(rr_slice id) noexcept {
  Quietly("removing a reference", [&] {
    if (RayIsUp()) GetRayRuntime()->RemoveLocalReference(Str(id));
  });
}

// Stores bytes; `out_id` gets the object's id, holding one local reference.
int rr_put(rr_slice bytes, std::string *out_id, std::string *error) {
  return Guard(error, [&] {
    *out_id = GetRayRuntime()->Put(std::make_shared<msgpack::sbuffer>(Pack(bytes)));
  });
}

// Waits for an object (`timeout_ms < 0`: without limit) and writes its bytes to `out`.
int rr_get(rr_slice id, int timeout_ms, std::string *out, std::string *error) {
  return Guard(error, [&] {
    auto packed = GetRayRuntime()->Get(Str(id), timeout_ms);
    ray::CheckResult(packed);
    if (Serializer::IsXLang(packed->data(), packed->size())) {
      *out = Contents(packed->data() + ray::internal::XLANG_HEADER_LEN,
                      packed->size() - ray::internal::XLANG_HEADER_LEN);
    } else {
      *out = Contents(packed->data(), packed->size());
    }
  });
}

// Waits until `num_objects` of the objects are ready or the timeout passes; sets `ready[i]`.
int rr_wait(const rr_slice *ids, size_t nids, int num_objects, int timeout_ms, uint8_t *ready,
            std::string *error) {
  return Guard(error, [&] {
    std::vector<std::string> object_ids;
    object_ids.reserve(nids);
    for (size_t i = 0; i < nids; i++) object_ids.push_back(Str(ids[i]));
    auto found = GetRayRuntime()->Wait(object_ids, num_objects, timeout_ms);
    for (size_t i = 0; i < nids && i < found.size(); i++) ready[i] = found[i] ? 1 : 0;
  });
}

static std::vector<TaskArg> Arguments(rr_slice id, const rr_arg *args, size_t nargs) {
  std::vector<TaskArg> task_args;
  task_args.reserve(nargs + 1);
  task_args.push_back(ValueArg(id));
  for (size_t i = 0; i < nargs; i++) {
    if (args[i].is_ref) {
      TaskArg arg;
      arg.id = Str(args[i].bytes);
      task_args.push_back(std::move(arg));
    } else {
      task_args.push_back(ValueArg(args[i].bytes));
    }
  }
  return task_args;
}

static std::unordered_map<std::string, double> Resources(const rr_resource *resources,
                                                         size_t n) {
  std::unordered_map<std::string, double> out;
  for (size_t i = 0; i < n; i++) out[Str(resources[i].name)] = resources[i].amount;
  ray::internal::CheckTaskOptions(out);
  return out;
}

// Runs the function registered as `id`, in bundle `bundle` of placement group `group` if one is
// given; `out_id` gets its result's id (one local reference).
int rr_submit(rr_slice id, const rr_arg *args, size_t nargs, const rr_resource *resources,
              size_t nresources, rr_slice name, rr_slice group, int bundle,
              std::string *out_id, std::string *error) {
  return Guard(error, [&] {
    RemoteFunctionHolder holder(kTaskEntry);
    auto task_args = Arguments(id, args, nargs);
    ray::internal::CallOptions options;
    options.name = Str(name);
    options.resources = Resources(resources, nresources);
    Place(options, group, bundle);
    *out_id = GetRayRuntime()->Call(holder, task_args, options);
    DisconnectAtExitAfterFirstTask();
  });
}

// Creates an actor with the constructor registered as `id`; `out_actor` gets the actor's id.
int rr_create_actor(rr_slice id, const rr_arg *args, size_t nargs,
                    const rr_resource *resources, size_t nresources, rr_slice name,
                    int max_restarts, int max_concurrency, rr_slice group, int bundle,
                    std::string *out_actor, std::string *error) {
  return Guard(error, [&] {
    RemoteFunctionHolder holder("", kActorEntry, "RustActor", ray::internal::LangType::CPP);
    auto task_args = Arguments(id, args, nargs);
    ray::internal::ActorCreationOptions options;
    options.name = Str(name);
    options.resources = Resources(resources, nresources);
    options.max_restarts = max_restarts;
    options.max_concurrency = max_concurrency;
    Place(options, group, bundle);
    *out_actor = GetRayRuntime()->CreateActor(holder, task_args, options);
    {
      std::lock_guard<std::mutex> lock(actors_mutex);
      live_actors.insert(*out_actor);
    }
    DisconnectAtExitAfterFirstTask();
  });
}

// Calls the method registered as `id` on an actor; `out_id` gets the result's id.
int rr_call_actor(rr_slice actor, rr_slice id, const rr_arg *args, size_t nargs,
                  std::string *out_id, std::string *error) {
  return Guard(error, [&] {
    RemoteFunctionHolder holder(kMethodEntry);
    auto task_args = Arguments(id, args, nargs);
    ray::internal::CallOptions options;
    options.bundle_index = -1;
    *out_id = GetRayRuntime()->CallActor(holder, Str(actor), task_args, options);
  });
}

// Finds a named actor; `out_actor` stays empty when there is none.
int rr_get_actor(rr_slice name, std::string *out_actor, std::string *error) {
  return Guard(error, [&] { *out_actor = GetRayRuntime()->GetActorId(Str(name), ""); });
}

// The bytes another process needs to call actor `actor` (Ray's serialized handle, which holds
// its owner's address), for an actor handle passed inside an argument or a result.
int rr_serialize_actor(rr_slice actor, std::string *out, std::string *error) {
  return Guard(error, [&] { *out = GetRayRuntime()->SerializeActorHandle(Str(actor)); });
}

// Registers a handle serialized by `rr_serialize_actor` (in any process) with this worker, so
// it can call the actor; `out_actor` gets the actor's id.
int rr_register_actor(rr_slice handle, std::string *out_actor, std::string *error) {
  return Guard(error, [&] {
    *out_actor = GetRayRuntime()->DeserializeAndRegisterActorHandle(Str(handle));
  });
}

int rr_kill_actor(rr_slice actor, std::string *error) {
  return Guard(error, [&] {
    GetRayRuntime()->KillActor(Str(actor), true);
    std::lock_guard<std::mutex> lock(actors_mutex);
    live_actors.erase(Str(actor));
  });
}

// Creates a placement group of `nbundles` bundles with Ray's strategy number `strategy`;
// bundle i has the next `bundle_sizes[i]` entries of `resources`. `out_id` gets its id.
int rr_create_placement_group(rr_slice name, int strategy, const rr_resource *resources,
                              const size_t *bundle_sizes, size_t nbundles,
                              std::string *out_id, std::string *error) {
  return Guard(error, [&] {
    ray::PlacementGroupCreationOptions options;
    options.name = Str(name);
    options.strategy = static_cast<ray::PlacementStrategy>(strategy);
    size_t next = 0;
    for (size_t i = 0; i < nbundles; i++) {
      options.bundles.push_back(Resources(resources + next, bundle_sizes[i]));
      next += bundle_sizes[i];
    }
    *out_id = GetRayRuntime()->CreatePlacementGroup(options).GetID();
  });
}

int rr_remove_placement_group(rr_slice id, std::string *error) {
  return Guard(error, [&] { GetRayRuntime()->RemovePlacementGroup(Str(id)); });
}

// Every node the cluster has known, alive or dead: each a serialized `GcsNodeInfo` protobuf,
// after its length (4 bytes, little-endian), one after the other in `out`.
int rr_nodes(std::string *out, std::string *error) {
  return Guard(error, [&] {
    auto runtime = ray::internal::AbstractRayRuntime::GetInstance();
    if (!runtime) throw std::runtime_error("Ray is not initialized in this process");
    auto *state = runtime->GetGlobalStateAccessor().get();
    if (state == nullptr) throw std::runtime_error("this Ray process has no view of the cluster");
    for (const auto &node : state->GetAllNodeInfo()) {
      uint32_t len = static_cast<uint32_t>(node.size());
      for (int i = 0; i < 4; i++) out->push_back(static_cast<char>((len >> (8 * i)) & 0xff));
      out->append(node);
    }
  });
}

// Finds the live placement group named `name`: `out_id` stays empty when there is none, else
// it gets the id, `strategy` Ray's strategy number and `nbundles` its bundle count.
int rr_get_placement_group(rr_slice name, std::string *out_id, int *strategy, size_t *nbundles,
                           std::string *error) {
  return Guard(error, [&] {
    auto group = GetRayRuntime()->GetPlacementGroup(Str(name));
    if (group.Empty() || group.GetState() == ray::PlacementGroupState::REMOVED) return;
    *out_id = group.GetID();
    *strategy = static_cast<int>(group.GetStrategy());
    *nbundles = group.GetBundles().size();
  });
}

}  // extern "C"
