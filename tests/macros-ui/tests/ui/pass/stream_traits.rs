// With `futures::StreamExt` in scope, as every async consumer has: a stream's refs and values,
// and `as_completed`, are iterators in sync code and streams (`into_stream()`) in async code,
// and each trait's combinators compile without naming the trait.
use futures_util::StreamExt;
use rustyray::{ObjectRef, ObjectRefStream};

#[rustyray::remote(streaming)]
fn numbers(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

#[rustyray::remote]
fn square(x: u64) -> u64 {
    x * x
}

fn sync_context() {
    let refs: Vec<ObjectRef<u64>> = numbers::remote(3).map(|r| r).take(2).collect();
    let _next: Option<ObjectRef<u64>> = numbers::remote(3).next();
    let _sum: rustyray::Result<u64> = numbers::remote(3).values().sum();
    let _first = rustyray::as_completed(&refs).next();
    let _count = rustyray::as_completed(&refs).filter(|r| r.id() != refs[0].id()).count();
}

async fn async_context() {
    let stream: ObjectRefStream<u64> = numbers::remote(3);
    let _refs: Vec<ObjectRef<u64>> = stream.into_stream().map(|r| r).collect().await;
    let mut values = numbers::remote(3).values().into_stream();
    let _next: Option<rustyray::Result<u64>> = values.next().await;
    let squares: Vec<ObjectRef<u64>> = (0..3).map(square::remote).collect();
    let _done: Vec<ObjectRef<u64>> = rustyray::as_completed(&squares)
        .into_stream()
        .filter(|_| async { true })
        .collect()
        .await;
}

fn main() {
    let _ = (sync_context, async_context);
}
