// Class defaults on `#[rustyray::actor(..)]`: known options on the impl, with values that can
// run a call; more than one call at once needs `concurrent`.
#[rustyray::actor(num_cpus = 1)]
struct OnTheStruct;

#[rustyray::actor]
struct Serial;

#[rustyray::actor(max_concurrency = 4)]
impl Serial {
    fn new() -> Self {
        Serial
    }
}

#[rustyray::actor]
struct Never;

#[rustyray::actor(concurrent, max_concurrency = 0)]
impl Never {
    fn new() -> Self {
        Never
    }
}

#[rustyray::actor]
struct Typo;

#[rustyray::actor(max_restart = 2, num_cpus = "one")]
impl Typo {
    fn new() -> Self {
        Typo
    }
}

fn main() {}
