// Concurrency groups: a method names a declared group, and only `&self` methods run in one;
// limits are whole numbers of at least 1.
#[rustyray::actor]
struct Server;

#[rustyray::actor(concurrency_groups(io = 2, compute = 1))]
impl Server {
    fn new() -> Self {
        Server
    }

    #[rustyray(concurrency_group = "network")]
    async fn typo(&self) {}

    #[rustyray(concurrency_group = "io")]
    fn threaded(&self) {}

    #[rustyray(concurrency_group = "io")]
    async fn exclusive(&mut self) {}
}

#[rustyray::actor]
struct Zero;

#[rustyray::actor(concurrency_groups(io = 0))]
impl Zero {
    fn new() -> Self {
        Zero
    }
}

#[rustyray::actor]
struct Ungrouped;

#[rustyray::actor]
impl Ungrouped {
    fn new() -> Self {
        Ungrouped
    }

    #[rustyray(concurrency_group = "io")]
    async fn ping(&self) {}
}

fn main() {}
