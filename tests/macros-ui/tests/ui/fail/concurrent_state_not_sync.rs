// A concurrent actor's `&self` async calls share its state across threads: a state that is not
// `Sync` is refused, pointing at `concurrent`.
use std::cell::Cell;

#[rustyray::actor]
pub struct Tally {
    n: Cell<u64>,
}

#[rustyray::actor(concurrent)]
impl Tally {
    pub fn new() -> Self {
        Tally { n: Cell::new(0) }
    }

    pub async fn bump(&self) -> u64 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }
}

fn main() {}
