//! [`AsStream`]: one of rustyray's waiting iterators (a stream's refs or values,
//! [`as_completed`](crate::as_completed)) as a `futures` [`Stream`], for async code.
//!
//! Each of those types is an [`Iterator`] whose `next` blocks, and offers this adapter through
//! `into_stream()`, as `flume`'s receivers do. Being one trait each (not both), every
//! combinator of `Iterator`, or of `futures::StreamExt` on the adapter, compiles without naming
//! the trait, even with both in scope.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::Stream;

use crate::completion::AsCompleted;
use crate::object_ref::ObjectRef;
use crate::object_store::Value;
use crate::stream::{ObjectRefStream, StreamValues};

/// A waiting iterator of rustyray's as a [`Stream`]: its items come as the futures polling it
/// are woken, never by blocking an async worker. Made by `into_stream()`.
///
/// ```
/// use futures_util::StreamExt; // as async code has in scope
///
/// #[rustyray::remote(streaming)]
/// fn squares(n: u64) -> impl Iterator<Item = u64> {
///     (1..=n).map(|i| i * i)
/// }
///
/// #[rustyray::main]
/// async fn main() -> rustyray::Result<()> {
///     let values: Vec<rustyray::Result<u64>> = squares::remote(3).values().into_stream().collect().await;
///     assert_eq!(values.into_iter().collect::<rustyray::Result<Vec<_>>>()?, [1, 4, 9]);
///     // The iterator, in sync code, with the same trait in scope: no ambiguity.
///     let total: u64 = squares::remote(3).values().map(|v| v.unwrap()).sum();
///     assert_eq!(total, 14);
///     Ok(())
/// }
/// ```
#[must_use = "streams do nothing unless polled"]
#[derive(Debug)]
pub struct AsStream<I> {
    inner: I,
}

impl<I> AsStream<I> {
    pub(crate) fn new(inner: I) -> AsStream<I> {
        AsStream { inner }
    }

    /// The iterator it was made from.
    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// Back to the iterator.
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<T: Value> Stream for AsStream<ObjectRefStream<T>> {
    type Item = ObjectRef<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ObjectRef<T>>> {
        self.inner.poll_next_ref(cx)
    }
}

impl<T: Value + Clone> Stream for AsStream<StreamValues<T>> {
    type Item = crate::Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_value(cx)
    }
}

impl<T> Stream for AsStream<AsCompleted<T>> {
    type Item = ObjectRef<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ObjectRef<T>>> {
        self.inner.poll_next_done(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        Iterator::size_hint(&self.inner)
    }
}
