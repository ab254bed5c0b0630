// Every rule of #[actor] on an impl broken at once.
#[rustyray::actor]
struct Worker {
    n: u32,
}

#[rustyray::actor]
impl Worker {
    fn consume(self) -> u32 {
        self.n
    }
    fn id(&self) -> u32 {
        self.n
    }
    fn merge(&mut self, other: Self) {
        self.n += other.n;
    }
    fn generic<T>(&self, t: T) -> u8 {
        let _ = t;
        0
    }
}

fn main() {}
