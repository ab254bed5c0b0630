//! Profiling aid: Ray's "multi client tasks async": 4 async clients each submitting and
//! awaiting 10k no-op tasks.
use rustyray::ObjectRef;

#[rustyray::remote]
fn nop() {}

#[rustyray::remote]
async fn client(n: usize) -> rustyray::Result<()> {
    let refs: Vec<ObjectRef<()>> = (0..n).map(|_| nop::remote()).collect();
    for r in refs {
        r.await?;
    }
    Ok(())
}

fn main() {
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let clients: Vec<_> = (0..4).map(|_| client::remote(10_000)).collect();
        rustyray::get_all(&clients).unwrap();
    }
    eprintln!("{:.0} tasks/s", 400_000.0 / started.elapsed().as_secs_f64());
}
