//! Profiling aid: one-at-a-time calls (each gotten before the next is sent) to one sync actor,
//! or with `async` to one async actor.
#[rustyray::actor]
struct Sink;

#[rustyray::actor]
impl Sink {
    fn new() -> Self {
        Sink
    }
    fn ping(&self) {}
}

#[rustyray::actor]
struct AsyncSink;

#[rustyray::actor]
impl AsyncSink {
    fn new() -> Self {
        AsyncSink
    }
    async fn ping(&self) {}
}

fn main() {
    let asynchronous = std::env::args().nth(1).as_deref() == Some("async");
    let sink = Sink::remote();
    let async_sink = AsyncSink::remote();
    let n = 20_000;
    let started = std::time::Instant::now();
    for _ in 0..n {
        if asynchronous {
            rustyray::get(&async_sink.ping()).unwrap();
        } else {
            rustyray::get(&sink.ping()).unwrap();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{:.0} calls/s", n as f64 / secs);
}
