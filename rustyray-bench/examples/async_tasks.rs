//! Profiling aid: batches of no-op async tasks, nothing else.
#[rustyray::remote]
async fn nop_async() {}

fn main() {
    for _ in 0..40 {
        let refs: Vec<_> = (0..100_000).map(|_| nop_async::remote()).collect();
        rustyray::get_all(&refs).unwrap();
    }
}
