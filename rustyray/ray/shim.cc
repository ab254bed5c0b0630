// The C++ side of RustyRay's `ray` backend: a thin layer over Ray's C++ worker API.
//
// Driver side, it exposes plain C functions (the `rr_*` below) that the Rust backend calls to
// put and get objects, submit tasks, and create and call actors, always by *registered id*
// (`my_crate::module::function`) and with arguments as postcard bytes.
//
// Worker side, it registers with Ray generic entry points, one per number of arguments
// (`RustyRayTaskN`, `RustActor::CreateN`, `&RustActor::CallN`, and `RustyRayJson` for other
// languages). Each takes the registered id and the arguments as byte strings, and calls into
// the Rust registry of the same library (the `rustyray_worker_*` functions, defined in Rust).
// Ray resolves an argument passed as an object ref before the entry runs, so chains of refs
// work without RustyRay fetching anything itself.
//
// Every object RustyRay puts or returns holds one msgpack string: the postcard encoding of the
// value. Exceptions never cross into Rust: each `rr_*` function catches them and reports the
// message through an error string.
//
// Must be compiled with -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=0 (the ABI libray_api.so uses).

#include <ray/api.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

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

// Registers an entry point under `name` with Ray's function manager. A second library built
// with this shim in the same worker keeps the first one's entries.
template <typename F>
int Register(const char *name, F function) {
  try {
    Functions().RegisterRemoteFunction(name, function);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "rustyray: entry point %s not registered: %s\n", name, e.what());
  }
  return 0;
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

std::vector<rr_slice> Slices(std::initializer_list<const std::string *> args) {
  std::vector<rr_slice> out;
  out.reserve(args.size());
  for (const std::string *arg : args) out.push_back(Slice(*arg));
  return out;
}

std::string RunTask(const std::string &id, std::initializer_list<const std::string *> args) {
  auto slices = Slices(args);
  std::string out;
  if (rustyray_worker_run_task(Slice(id), slices.data(), slices.size(), &out) != 0) {
    throw std::runtime_error(out);
  }
  return out;
}

}  // namespace

// An actor on a Ray worker: owns the Rust state built by the registered constructor.
class RustActor {
 public:
  explicit RustActor(void *state) : state_(state) {}
  ~RustActor() { rustyray_worker_drop_actor(state_); }
  RustActor(const RustActor &) = delete;
  RustActor &operator=(const RustActor &) = delete;

  static RustActor *Construct(const std::string &id,
                              std::initializer_list<const std::string *> args) {
    auto slices = Slices(args);
    void *state = nullptr;
    std::string error;
    if (rustyray_worker_construct(Slice(id), slices.data(), slices.size(), &state, &error) !=
        0) {
      throw std::runtime_error(error);
    }
    return new RustActor(state);
  }

  std::string Call(const std::string &id, std::initializer_list<const std::string *> args) {
    auto slices = Slices(args);
    std::string out;
    if (rustyray_worker_call(state_, Slice(id), slices.data(), slices.size(), &out) != 0) {
      throw std::runtime_error(out);
    }
    return out;
  }

  static RustActor *Create0(std::string id);
  static RustActor *Create1(std::string id, std::string a0);
  static RustActor *Create2(std::string id, std::string a0, std::string a1);
  static RustActor *Create3(std::string id, std::string a0, std::string a1, std::string a2);
  static RustActor *Create4(std::string id, std::string a0, std::string a1, std::string a2, std::string a3);
  static RustActor *Create5(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4);
  static RustActor *Create6(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5);
  static RustActor *Create7(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6);
  static RustActor *Create8(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6, std::string a7);
  std::string Call0(std::string id);
  std::string Call1(std::string id, std::string a0);
  std::string Call2(std::string id, std::string a0, std::string a1);
  std::string Call3(std::string id, std::string a0, std::string a1, std::string a2);
  std::string Call4(std::string id, std::string a0, std::string a1, std::string a2, std::string a3);
  std::string Call5(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4);
  std::string Call6(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5);
  std::string Call7(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6);
  std::string Call8(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6, std::string a7);

 private:
  void *state_;
};

// --- Entry points registered with Ray (generated for 0 to 8 arguments) ---------------------

std::string RustyRayTask0(std::string id) { return RunTask(id, {}); }
std::string RustyRayTask1(std::string id, std::string a0) { return RunTask(id, {&a0}); }
std::string RustyRayTask2(std::string id, std::string a0, std::string a1) { return RunTask(id, {&a0, &a1}); }
std::string RustyRayTask3(std::string id, std::string a0, std::string a1, std::string a2) { return RunTask(id, {&a0, &a1, &a2}); }
std::string RustyRayTask4(std::string id, std::string a0, std::string a1, std::string a2, std::string a3) { return RunTask(id, {&a0, &a1, &a2, &a3}); }
std::string RustyRayTask5(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4) { return RunTask(id, {&a0, &a1, &a2, &a3, &a4}); }
std::string RustyRayTask6(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5) { return RunTask(id, {&a0, &a1, &a2, &a3, &a4, &a5}); }
std::string RustyRayTask7(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6) { return RunTask(id, {&a0, &a1, &a2, &a3, &a4, &a5, &a6}); }
std::string RustyRayTask8(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6, std::string a7) { return RunTask(id, {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7}); }
[[maybe_unused]] static const int kTaskEntries[] = {
    Register("RustyRayTask0", RustyRayTask0),
    Register("RustyRayTask1", RustyRayTask1),
    Register("RustyRayTask2", RustyRayTask2),
    Register("RustyRayTask3", RustyRayTask3),
    Register("RustyRayTask4", RustyRayTask4),
    Register("RustyRayTask5", RustyRayTask5),
    Register("RustyRayTask6", RustyRayTask6),
    Register("RustyRayTask7", RustyRayTask7),
    Register("RustyRayTask8", RustyRayTask8),
};

RustActor *RustActor::Create0(std::string id) { return Construct(id, {}); }
RustActor *RustActor::Create1(std::string id, std::string a0) { return Construct(id, {&a0}); }
RustActor *RustActor::Create2(std::string id, std::string a0, std::string a1) { return Construct(id, {&a0, &a1}); }
RustActor *RustActor::Create3(std::string id, std::string a0, std::string a1, std::string a2) { return Construct(id, {&a0, &a1, &a2}); }
RustActor *RustActor::Create4(std::string id, std::string a0, std::string a1, std::string a2, std::string a3) { return Construct(id, {&a0, &a1, &a2, &a3}); }
RustActor *RustActor::Create5(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4) { return Construct(id, {&a0, &a1, &a2, &a3, &a4}); }
RustActor *RustActor::Create6(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5) { return Construct(id, {&a0, &a1, &a2, &a3, &a4, &a5}); }
RustActor *RustActor::Create7(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6) { return Construct(id, {&a0, &a1, &a2, &a3, &a4, &a5, &a6}); }
RustActor *RustActor::Create8(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6, std::string a7) { return Construct(id, {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7}); }
std::string RustActor::Call0(std::string id) { return Call(id, {}); }
std::string RustActor::Call1(std::string id, std::string a0) { return Call(id, {&a0}); }
std::string RustActor::Call2(std::string id, std::string a0, std::string a1) { return Call(id, {&a0, &a1}); }
std::string RustActor::Call3(std::string id, std::string a0, std::string a1, std::string a2) { return Call(id, {&a0, &a1, &a2}); }
std::string RustActor::Call4(std::string id, std::string a0, std::string a1, std::string a2, std::string a3) { return Call(id, {&a0, &a1, &a2, &a3}); }
std::string RustActor::Call5(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4) { return Call(id, {&a0, &a1, &a2, &a3, &a4}); }
std::string RustActor::Call6(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5) { return Call(id, {&a0, &a1, &a2, &a3, &a4, &a5}); }
std::string RustActor::Call7(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6) { return Call(id, {&a0, &a1, &a2, &a3, &a4, &a5, &a6}); }
std::string RustActor::Call8(std::string id, std::string a0, std::string a1, std::string a2, std::string a3, std::string a4, std::string a5, std::string a6, std::string a7) { return Call(id, {&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7}); }
[[maybe_unused]] static const int kActorEntries[] = {
    Register("RustActor::Create0", RustActor::Create0),
    Register("RustActor::Create1", RustActor::Create1),
    Register("RustActor::Create2", RustActor::Create2),
    Register("RustActor::Create3", RustActor::Create3),
    Register("RustActor::Create4", RustActor::Create4),
    Register("RustActor::Create5", RustActor::Create5),
    Register("RustActor::Create6", RustActor::Create6),
    Register("RustActor::Create7", RustActor::Create7),
    Register("RustActor::Create8", RustActor::Create8),
    Register("&RustActor::Call0", &RustActor::Call0),
    Register("&RustActor::Call1", &RustActor::Call1),
    Register("&RustActor::Call2", &RustActor::Call2),
    Register("&RustActor::Call3", &RustActor::Call3),
    Register("&RustActor::Call4", &RustActor::Call4),
    Register("&RustActor::Call5", &RustActor::Call5),
    Register("&RustActor::Call6", &RustActor::Call6),
    Register("&RustActor::Call7", &RustActor::Call7),
    Register("&RustActor::Call8", &RustActor::Call8),
};

// The registered names of the entry points, by number of arguments.
// Called from other languages (Python's `ray.cross_language.cpp_function("RustyRayJson")`):
// runs the function registered as `id` with its arguments as a JSON array, and returns its
// result as JSON.
std::string RustyRayJson(std::string id, std::string json) {
  std::string out;
  if (rustyray_worker_run_json(Slice(id), Slice(json), &out) != 0) {
    throw std::runtime_error(out);
  }
  return out;
}
[[maybe_unused]] static const int kJsonEntry = Register("RustyRayJson", RustyRayJson);

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

template <typename F>
int Guard(std::string *error, F body) {
  try {
    body();
    return kOk;
  } catch (const ray::internal::RayTaskException &e) {
    *error = e.what();
    return kTaskFailed;
  } catch (const ray::internal::RayActorException &e) {
    *error = e.what();
    return kActorDied;
  } catch (const ray::internal::RayWorkerException &e) {
    *error = e.what();
    return kWorkerDied;
  } catch (const ray::internal::RayTimeoutException &e) {
    *error = e.what();
    return kTimeout;
  } catch (const ray::internal::UnreconstructableException &e) {
    *error = e.what();
    return kObjectLost;
  } catch (const std::exception &e) {
    *error = e.what();
    return kOther;
  } catch (...) {
    *error = "an unknown C++ exception";
    return kOther;
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

std::string *rr_string_new() { return new std::string(); }
void rr_string_free(std::string *s) { delete s; }
const char *rr_string_data(const std::string *s) { return s->data(); }
size_t rr_string_len(const std::string *s) { return s->size(); }
void rr_string_assign(std::string *s, const char *data, size_t len) { s->assign(data, len); }


// Connects this process to the cluster at `address` as a driver. `node_ip` (if not empty) is
// the address of this node as the cluster knows it (127.0.0.1 for a local cluster).
int rr_init(rr_slice address, const rr_slice *paths, size_t npaths, rr_slice ray_namespace,
            rr_slice node_ip, std::string *error) {
  return Guard(error, [&] {
    if (ray::IsInitialized()) return;
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
  });
}

void rr_shutdown() {
  if (ray::IsInitialized()) ray::Shutdown();
}

void rr_add_reference(rr_slice id) {
  if (RayIsUp()) GetRayRuntime()->AddLocalReference(Str(id));
}

void rr_remove_reference(rr_slice id) {
  if (RayIsUp()) GetRayRuntime()->RemoveLocalReference(Str(id));
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
      *out = Serializer::Deserialize<std::string>(packed->data(), packed->size(),
                                                  ray::internal::XLANG_HEADER_LEN);
    } else {
      *out = Serializer::Deserialize<std::string>(packed->data(), packed->size());
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

static void CheckArity(size_t nargs) {
  if (nargs > 8) {
    throw std::invalid_argument(
        "the ray backend passes at most 8 arguments to a remote function or method; "
        "group the others into a struct or tuple");
  }
}

// Runs the function registered as `id`; `out_id` gets its result's id (one local reference).
int rr_submit(rr_slice id, const rr_arg *args, size_t nargs, const rr_resource *resources,
              size_t nresources, rr_slice name, std::string *out_id, std::string *error) {
  return Guard(error, [&] {
    CheckArity(nargs);
    RemoteFunctionHolder holder("RustyRayTask" + std::to_string(nargs));
    auto task_args = Arguments(id, args, nargs);
    ray::internal::CallOptions options;
    options.name = Str(name);
    options.resources = Resources(resources, nresources);
    *out_id = GetRayRuntime()->Call(holder, task_args, options);
  });
}

// Creates an actor with the constructor registered as `id`; `out_actor` gets the actor's id.
int rr_create_actor(rr_slice id, const rr_arg *args, size_t nargs,
                    const rr_resource *resources, size_t nresources, rr_slice name,
                    int max_restarts, int max_concurrency, std::string *out_actor,
                    std::string *error) {
  return Guard(error, [&] {
    CheckArity(nargs);
    std::string function = "RustActor::Create" + std::to_string(nargs);
    RemoteFunctionHolder holder("", function,
                                ray::internal::FunctionManager::GetClassNameByFuncName(function),
                                ray::internal::LangType::CPP);
    auto task_args = Arguments(id, args, nargs);
    ray::internal::ActorCreationOptions options;
    options.name = Str(name);
    options.resources = Resources(resources, nresources);
    options.max_restarts = max_restarts;
    options.max_concurrency = max_concurrency;
    *out_actor = GetRayRuntime()->CreateActor(holder, task_args, options);
  });
}

// Calls the method registered as `id` on an actor; `out_id` gets the result's id.
int rr_call_actor(rr_slice actor, rr_slice id, const rr_arg *args, size_t nargs,
                  std::string *out_id, std::string *error) {
  return Guard(error, [&] {
    CheckArity(nargs);
    RemoteFunctionHolder holder("&RustActor::Call" + std::to_string(nargs));
    auto task_args = Arguments(id, args, nargs);
    ray::internal::CallOptions options;
    *out_id = GetRayRuntime()->CallActor(holder, Str(actor), task_args, options);
  });
}

// Finds a named actor; `out_actor` stays empty when there is none.
int rr_get_actor(rr_slice name, std::string *out_actor, std::string *error) {
  return Guard(error, [&] { *out_actor = GetRayRuntime()->GetActorId(Str(name), ""); });
}

int rr_kill_actor(rr_slice actor, std::string *error) {
  return Guard(error, [&] { GetRayRuntime()->KillActor(Str(actor), true); });
}

}  // extern "C"
