//! A pool of resources tasks draw from: the node's, or one placement-group bundle's.
//!
//! Amounts are thousandths, indexed as the scheduler's resource names. GPUs are also counted
//! one by one, so a task knows which it holds: a whole-GPU request takes that many GPUs with
//! nothing else on them (lowest ids first); a fraction shares one GPU, the fullest it fits on.

use smallvec::SmallVec;

use super::{Demand, GPU, MILLI};

/// The GPUs a lease holds: `(id, thousandths)` each. Boxed: most leases hold none, and an
/// empty box allocates nothing and moves as two words.
pub(crate) type GpuShare = Box<[(usize, i64)]>;

/// Resources to draw from.
#[derive(Debug)]
pub(super) struct Pool {
    /// What is free now, per resource.
    pub(super) available: Vec<i64>,
    /// What the pool holds in all, per resource (what a request is checked against).
    pub(super) total: Vec<i64>,
    /// The GPUs in the pool and what is free on each, by id.
    pub(super) gpus: Vec<(usize, i64)>,
    /// The pool of a removed placement group: what comes back goes to the node instead.
    pub(super) removed: bool,
}

impl Pool {
    /// The node's pool: `total` of everything, GPUs `0..n`.
    pub(super) fn node(total: Vec<i64>) -> Pool {
        let gpus = (0..(total[GPU] / MILLI as i64) as usize)
            .map(|id| (id, MILLI as i64))
            .collect();
        Pool {
            available: total.clone(),
            total,
            gpus,
            removed: false,
        }
    }

    /// An empty pool sized for `total` (a bundle not reserved yet).
    pub(super) fn empty(total: Vec<i64>) -> Pool {
        Pool {
            available: vec![0; total.len()],
            total,
            gpus: Vec::new(),
            removed: false,
        }
    }

    /// Whether `demand` can be taken now.
    #[inline]
    pub(super) fn fits(&self, demand: &Demand) -> bool {
        demand
            .amounts
            .iter()
            .all(|&(i, amount)| self.available[i] >= amount)
            && (demand.gpus() == 0 || self.pick_gpus(demand.gpus()).is_some())
    }

    /// Takes `demand` (which must fit), returning the GPUs it got.
    #[inline]
    pub(super) fn take(&mut self, demand: &Demand) -> GpuShare {
        for &(i, amount) in demand.amounts.iter() {
            self.available[i] -= amount;
        }
        if demand.gpus() == 0 {
            return GpuShare::default();
        }
        let share = self.pick_gpus(demand.gpus()).unwrap_or_default();
        for &(id, amount) in &share {
            if let Some(gpu) = self.gpus.iter_mut().find(|(g, _)| *g == id) {
                gpu.1 -= amount;
            }
        }
        share.into_vec().into_boxed_slice()
    }

    /// Gives back `amounts` and the GPUs a lease held.
    #[inline]
    pub(super) fn give(&mut self, amounts: &[(usize, i64)], share: &[(usize, i64)]) {
        for &(i, amount) in amounts {
            self.available[i] += amount;
        }
        if !share.is_empty() {
            self.give_gpus(share);
        }
    }

    /// Adds GPU shares (a lease's, or a bundle's coming back to the node).
    pub(super) fn give_gpus(&mut self, share: &[(usize, i64)]) {
        for &(id, amount) in share {
            match self.gpus.iter_mut().find(|(g, _)| *g == id) {
                Some(gpu) => gpu.1 += amount,
                None => {
                    self.gpus.push((id, amount));
                    self.gpus.sort_unstable();
                }
            }
        }
    }

    /// Which GPUs `amount` thousandths would take, if they can be had now.
    fn pick_gpus(&self, amount: i64) -> Option<SmallVec<[(usize, i64); 2]>> {
        let whole = MILLI as i64;
        if amount == 0 {
            return Some(SmallVec::new());
        }
        if amount < whole {
            // A fraction: the fullest GPU it fits on, so whole ones stay free.
            return self
                .gpus
                .iter()
                .filter(|(_, free)| *free >= amount)
                .min_by_key(|(id, free)| (*free, *id))
                .map(|&(id, _)| SmallVec::from_slice(&[(id, amount)]));
        }
        let count = (amount / whole) as usize;
        let free: SmallVec<[(usize, i64); 2]> = self
            .gpus
            .iter()
            .filter(|(_, free)| *free == whole)
            .take(count)
            .map(|&(id, _)| (id, whole))
            .collect();
        (free.len() == count).then_some(free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus(amount: i64) -> Demand {
        Demand::new(smallvec::smallvec![(GPU, amount)], 0)
    }

    #[test]
    fn whole_gpus_are_distinct_and_fractions_share_the_fullest() {
        let mut pool = Pool::node(vec![0, 3000]);
        let a = pool.take(&gpus(1000));
        let b = pool.take(&gpus(1000));
        assert_eq!((&*a, &*b), (&[(0, 1000)][..], &[(1, 1000)][..]));
        let half = pool.take(&gpus(500));
        let quarter = pool.take(&gpus(250));
        assert_eq!(&*half, &[(2, 500)], "the only GPU with room");
        assert_eq!(&*quarter, &[(2, 250)], "shares it");
        assert!(!pool.fits(&gpus(1000)), "no whole GPU left");
        pool.give(&gpus(1000).amounts, &a);
        assert!(pool.fits(&gpus(1000)));
        assert!(!pool.fits(&gpus(2000)), "one whole GPU is free, not two");
        let fraction = pool.take(&gpus(250));
        assert_eq!(&*fraction, &[(2, 250)], "fills the shared one first");
        let larger = pool.take(&gpus(500));
        assert_eq!(&*larger, &[(0, 500)], "too big for what is left on GPU 2");
    }
}
