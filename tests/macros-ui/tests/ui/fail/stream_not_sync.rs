// A stream has one reader: it moves to the thread or task that reads it (it is `Send`), but it
// cannot be shared, like std's `mpsc::Receiver`. Nor can a producer's sink.
use rustyray::task::StreamSink;
use rustyray::{ObjectRefStream, StreamValues};

fn shared<T: Sync>() {}

fn main() {
    shared::<ObjectRefStream<u64>>();
    shared::<StreamValues<u64>>();
    shared::<StreamSink<u64>>();
}
