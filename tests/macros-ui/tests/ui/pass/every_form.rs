// Every form the macros accept, used through `::rustyray` only.
use rustyray::prelude::*;

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct Point {
    x: f64,
    y: f64,
}

#[rustyray::remote]
fn origin() -> Point {
    Point { x: 0.0, y: 0.0 }
}

#[rustyray::remote(num_cpus = 0.5, num_gpus = 0, max_retries = 2, retry_exceptions = true, name = "shift", resources(disk = 0))]
fn shift(p: Point, (dx, dy): (f64, f64)) -> Point {
    Point { x: p.x + dx, y: p.y + dy }
}

#[rustyray::remote]
pub(crate) async fn norm(p: Point) -> Result<f64, String> {
    Ok((p.x * p.x + p.y * p.y).sqrt())
}

#[rustyray::remote]
fn unresolved(r: ObjectRef<Point>) -> ObjectRef<Point> {
    r
}

#[rustyray::actor]
struct Tracker {
    seen: Vec<Point>,
}

#[rustyray::actor(max_restarts = 1, max_task_retries = 1, num_cpus = 0.5, resources(disk = 1))]
impl Tracker {
    async fn new() -> Result<Self, std::io::Error> {
        Ok(Tracker { seen: Vec::new() })
    }
    fn record(&mut self, p: Point) -> usize {
        self.seen.push(p);
        self.seen.len()
    }
    async fn last(&self) -> Option<Point> {
        self.seen.last().cloned()
    }
    fn clear(&mut self) {
        self.seen.clear();
    }
    #[rustyray(skip)]
    fn local_only(&self, _borrowed: &str) {}
    fn helper() -> u8 {
        1
    }
}

#[rustyray::main]
async fn main() -> rustyray::Result<()> {
    let p = shift::options().num_cpus(1.0).remote(origin::remote(), (3.0, 4.0));
    assert_eq!(norm::remote(&p).await?, 5.0);
    let same = unresolved::remote(p.clone()).await?;
    let tracker: ActorHandle<Tracker> = Tracker::options()
        .name("t")
        .max_restarts(2)
        .resource("disk", 0.0)
        .remote();
    tracker.record(&same);
    tracker.clear();
    assert_eq!(tracker.last().await?, None);
    assert_eq!(Tracker::helper(), 1);
    Ok(())
}
