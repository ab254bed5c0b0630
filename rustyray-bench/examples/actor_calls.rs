//! Profiling aid: pipelined calls to one sync actor, nothing else.
#[rustyray::actor]
struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }
    fn ping(&self) {}
}

fn main() {
    let sink = Sink::remote();
    for _ in 0..30 {
        let refs: Vec<_> = (0..100_000).map(|_| sink.ping()).collect();
        rustyray::get_all(&refs).unwrap();
    }
}
