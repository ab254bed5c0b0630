//! Large blocks of memory kept mapped for reuse by [`put_slice`](crate::put_slice).
//!
//! A fresh allocation of many megabytes comes from `mmap`, and its first write page-faults
//! every 4 KiB page (an 80 MB copy into fresh memory ran at a third of the speed of the same
//! copy into memory written before). Ray avoids this by copying every `put` into shared memory
//! it keeps mapped. The store does the same for the values that [`put_slice`] copies: when
//! such an object is freed and nobody else holds its `Vec`, the `Vec`'s allocation is kept
//! here instead of being given back, and the next `put_slice` of the same element type and a
//! fitting size copies into it.
//!
//! The kept blocks count against the store's memory budget (the store charges them when it
//! keeps them), there are at most [`KEPT`] of them, and the store gives them all back before
//! it spills anything to make room. Only allocations of at least [`MIN_BLOCK`] bytes are kept:
//! smaller ones are reused by the allocator itself.
//!
//! [`put_slice`]: crate::put_slice

use std::any::Any;
use std::mem::size_of;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Cell, Object, ObjectStore, Value};
use crate::error::Result;

/// The smallest allocation worth keeping (the allocator serves smaller ones from memory it
/// keeps mapped itself).
pub(super) const MIN_BLOCK: usize = 1 << 20;

/// The most blocks a store keeps at once: enough for every thread of a 2–8 core machine to
/// have one put in flight while others are being freed.
pub(super) const KEPT: usize = 8;

/// An emptied `Vec<T>` of `Copy` elements, kept for its allocation. It stays typed (a block is
/// reused for the same `T` only), so reusing it is `Vec::extend_from_slice` into capacity it
/// already has: a `memcpy`, and no unsafe code.
pub(super) struct Block {
    vec: Box<dyn Any + Send>,
    /// The allocation's size in bytes.
    size: usize,
}

impl Block {
    /// The allocation of `vec`, if it is large enough to keep.
    pub(super) fn of_vec<T: Copy + Send + 'static>(mut vec: Vec<T>) -> Option<Block> {
        let size = vec.capacity().checked_mul(size_of::<T>())?;
        if size < MIN_BLOCK {
            return None;
        }
        vec.clear(); // `T: Copy`: nothing to drop
        Some(Block {
            vec: Box::new(vec),
            size,
        })
    }

    /// Its size in bytes.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Whether a `Vec<T>` of `len` elements can be built in it: a `Vec<T>`'s allocation, with
    /// room for `len` elements, wasting no more than a quarter of it.
    fn fits<T: 'static>(&self, len: usize) -> bool {
        let Some(needed) = len.checked_mul(size_of::<T>()) else {
            return false;
        };
        self.vec.is::<Vec<T>>() && self.size >= needed && self.size - needed <= self.size / 4
    }

    /// The emptied `Vec<T>` itself, if the block is one.
    fn into_vec<T: 'static>(self) -> Option<Vec<T>> {
        self.vec.downcast::<Vec<T>>().ok().map(|vec| *vec)
    }
}

/// Blocks kept for reuse, newest last: a store's, or a Ray worker's for decoded arguments
/// (`codec/raw.rs`).
pub(super) struct Blocks {
    kept: Mutex<Vec<Block>>,
    /// The most blocks kept at once.
    limit: usize,
}

impl Blocks {
    /// No blocks, and room for at most `limit`.
    pub(super) const fn new(limit: usize) -> Blocks {
        Blocks {
            kept: parking_lot::const_mutex(Vec::new()),
            limit,
        }
    }

    /// Keeps `block`; returns the oldest block if there were already as many as the limit.
    pub(super) fn keep(&self, block: Block) -> Option<Block> {
        let mut kept = self.kept.lock();
        let evicted = (kept.len() >= self.limit).then(|| kept.remove(0));
        kept.push(block);
        evicted
    }

    /// Takes the newest kept block that a `Vec<T>` of `len` elements fits: its emptied `Vec`,
    /// and its size in bytes.
    pub(super) fn take<T: 'static>(&self, len: usize) -> Option<(Vec<T>, usize)> {
        let block = {
            let mut kept = self.kept.lock();
            let at = kept.iter().rposition(|block| block.fits::<T>(len))?;
            kept.remove(at)
        };
        let size = block.size();
        block.into_vec().map(|vec| (vec, size))
    }

    /// Takes every kept block (to give their memory back).
    pub(super) fn drain(&self) -> Vec<Block> {
        std::mem::take(&mut *self.kept.lock())
    }

    /// Whether any block is kept.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.kept.lock().is_empty()
    }

    /// How many blocks are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.kept.lock().len()
    }
}

impl ObjectStore {
    /// A new ready object holding a copy of `items` as a `Vec<T>`, built in a kept block when
    /// one fits (see the module's notes).
    pub(crate) fn insert_slice<T: Value + Copy>(
        self: &Arc<Self>,
        items: &[T],
    ) -> Result<Arc<Cell>> {
        let vec = match self.blocks.take::<T>(items.len()) {
            Some((mut vec, size)) => {
                self.uncharge(size); // the object charges its own size when it is stored
                vec.extend_from_slice(items); // within its capacity: a `memcpy`
                vec
            }
            None => items.to_vec(),
        };
        self.insert_ready(Object::slice(vec))
    }

    /// Keeps the allocation of a freed object's value, if it is one `put_slice` copied, nobody
    /// else holds it, and the memory budget has room for it; otherwise it is freed.
    pub(super) fn recycle(&self, object: Object) {
        let Some(block) = object.into_block() else {
            return;
        };
        if !self.take_room(block.size() as u64) {
            return; // no room: the block is freed here
        }
        if let Some(oldest) = self.blocks.keep(block) {
            self.uncharge(oldest.size());
        }
    }

    /// Frees every kept block, giving its bytes back to the budget (before spilling, and at
    /// shutdown); whether there was any.
    pub(crate) fn give_back_blocks(&self) -> bool {
        let blocks = self.blocks.drain();
        for block in &blocks {
            self.uncharge(block.size());
        }
        !blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_taken_from_a_vec_is_reused_for_a_copy() {
        let vec: Vec<u64> = vec![1; MIN_BLOCK / 8];
        let ptr = vec.as_ptr() as usize;
        let blocks = Blocks::new(KEPT);
        assert!(blocks
            .keep(Block::of_vec(vec).expect("large enough"))
            .is_none());
        let items: Vec<u64> = (0..(MIN_BLOCK / 8) as u64 - 10).collect();
        let (mut copy, size) = blocks.take::<u64>(items.len()).expect("it fits");
        assert_eq!(size, MIN_BLOCK);
        copy.extend_from_slice(&items);
        assert_eq!(copy, items);
        assert_eq!(copy.as_ptr() as usize, ptr, "built in the same memory");
        assert_eq!(copy.capacity(), MIN_BLOCK / 8);
    }

    #[test]
    fn small_vecs_and_other_types_are_not_used() {
        assert!(Block::of_vec(vec![0u8; MIN_BLOCK - 1]).is_none());
        assert!(Block::of_vec(Vec::<()>::with_capacity(usize::MAX)).is_none());
        let blocks = Blocks::new(KEPT);
        assert!(blocks
            .keep(Block::of_vec(vec![0u8; MIN_BLOCK]).unwrap())
            .is_none());
        assert!(blocks.take::<u64>(MIN_BLOCK / 8).is_none(), "another type");
        assert!(blocks.take::<i8>(MIN_BLOCK).is_none(), "another type");
        assert!(blocks.take::<u8>(MIN_BLOCK + 1).is_none(), "too small");
        assert!(
            blocks.take::<u8>(MIN_BLOCK / 2).is_none(),
            "too much wasted"
        );
        assert!(blocks.take::<u8>(MIN_BLOCK).is_some());
        assert!(blocks.is_empty());
    }

    #[test]
    fn at_most_kept_blocks_are_kept_and_the_oldest_goes_first() {
        let blocks = Blocks::new(KEPT);
        let sizes: Vec<usize> = (0..=KEPT).map(|i| MIN_BLOCK + i).collect();
        let mut evicted = Vec::new();
        for size in &sizes {
            evicted.extend(blocks.keep(Block::of_vec(vec![0u8; *size]).unwrap()));
        }
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].size(), sizes[0]);
        assert_eq!(blocks.drain().len(), KEPT);
    }

    fn store_with_budget(memory: u64) -> Arc<ObjectStore> {
        let limits = super::super::StoreLimits {
            memory,
            spill_dir: std::env::temp_dir(),
            spill_limit: None,
        };
        ObjectStore::new(9, limits)
    }

    fn used(store: &ObjectStore) -> u64 {
        store.used.load(std::sync::atomic::Ordering::Acquire)
    }

    fn address(cell: &Arc<Cell>) -> usize {
        cell.read::<Vec<u32>>().unwrap().unwrap().as_ptr() as usize
    }

    #[test]
    fn a_freed_put_slice_value_is_reused_by_the_next_and_counted_meanwhile() {
        let store = store_with_budget(1 << 30);
        let items: Vec<u32> = (0..(MIN_BLOCK as u32)).collect();
        let first = store.insert_slice(&items).unwrap();
        let memory = address(&first);
        drop(first);
        assert!(used(&store) >= 4 * MIN_BLOCK as u64, "a kept block counts");
        let again: Vec<u32> = items.iter().map(|i| i ^ 1).collect();
        let second = store.insert_slice(&again).unwrap();
        assert_eq!(address(&second), memory, "copied into the kept block");
        assert_eq!(*second.read::<Vec<u32>>().unwrap().unwrap(), again);
        assert!(store.blocks.is_empty());
        drop(second);
        assert!(store.give_back_blocks());
        assert_eq!(used(&store), 0, "everything given back");
    }

    #[test]
    fn a_value_still_lent_out_is_not_reused() {
        let store = store_with_budget(1 << 30);
        let items = vec![3u32; MIN_BLOCK];
        let first = store.insert_slice(&items).unwrap();
        let lent = first.read::<Vec<u32>>().unwrap().unwrap();
        drop(first);
        assert!(store.blocks.is_empty(), "the reader still holds it");
        let second = store.insert_slice(&items).unwrap();
        assert_ne!(address(&second), lent.as_ptr() as usize);
        assert_eq!(*lent, items, "the lent value is untouched");
    }

    #[test]
    fn kept_blocks_are_given_back_before_anything_is_spilled() {
        // Bytes, whose encoded size (what the budget counts) is their length and a header.
        let size = 4 * MIN_BLOCK as u64 + 64;
        let store = store_with_budget(2 * size);
        let items = vec![5u8; 4 * MIN_BLOCK];
        let held = store.insert_slice(&items).unwrap();
        drop(store.insert_slice(&items).unwrap()); // its block is kept: the budget is full
        assert!(!store.blocks.is_empty());
        let other = store
            .insert_ready(Object::new(vec![6u8; 3 * MIN_BLOCK]))
            .unwrap();
        assert!(store.blocks.is_empty(), "the block made room");
        assert!(
            matches!(held.state(), super::super::State::Ready),
            "nothing was spilled"
        );
        assert!(matches!(other.state(), super::super::State::Ready));
    }
}
