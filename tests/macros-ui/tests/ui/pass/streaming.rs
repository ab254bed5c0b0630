// Streaming functions and methods: sync and async, iterators and streams, plain and fallible
// items, borrowed arguments and state, with `backpressure` on the attribute and per call.
use rustyray::{ObjectRef, ObjectRefStream};

#[rustyray::remote(streaming, backpressure = 4)]
fn chunks(data: &Vec<u8>, size: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    data.chunks(size).map(<[u8]>::to_vec)
}

#[rustyray::remote(streaming)]
fn parsed(lines: Vec<String>) -> impl Iterator<Item = Result<u64, std::num::ParseIntError>> {
    lines.into_iter().map(|l| l.parse())
}

#[rustyray::remote(streaming)]
async fn later(n: u64) -> impl rustyray::Stream<Item = anyhow::Result<u64>> {
    futures_util::stream::iter((0..n).map(Ok))
}

#[rustyray::actor]
struct Log {
    lines: Vec<String>,
}

#[rustyray::actor]
impl Log {
    fn new() -> Self {
        Log { lines: Vec::new() }
    }

    #[rustyray(streaming, backpressure = 2)]
    fn tail(&self, from: usize) -> impl Iterator<Item = String> + '_ {
        self.lines.iter().skip(from).cloned()
    }
}

fn main() {
    let _typed = || {
        let a: ObjectRefStream<Vec<u8>> = chunks::options().backpressure(1).remote(vec![1, 2, 3], 2);
        let b: ObjectRefStream<u64> = parsed::remote(vec!["1".to_owned()]);
        let c: ObjectRefStream<u64> = later::remote(3);
        let log = Log::remote();
        let d: ObjectRefStream<String> = log.tail(0);
        let _first: Option<ObjectRef<Vec<u8>>> = { a }.next();
        // A stream moves to the thread or task that reads it.
        std::thread::spawn(move || drop((b, c, d.values())));
    };
}
