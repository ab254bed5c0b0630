// An actor's state moves to the threads that run it, so it must be `Send`.
use std::rc::Rc;

#[rustyray::actor]
struct Shared {
    counter: Rc<u32>,
}

#[rustyray::actor]
impl Shared {
    fn new() -> Self {
        Shared { counter: Rc::new(0) }
    }
}

fn main() {}
