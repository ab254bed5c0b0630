// `&T`, `&[T]` and `Arc<T>` parameters, in functions (sync and async) and actor methods,
// called with values, `Arc`s and refs.
use std::sync::Arc;

#[rustyray::remote]
fn total(values: &Vec<u64>, scale: Arc<u64>, name: &String) -> u64 {
    values.iter().sum::<u64>() * *scale + name.len() as u64
}

#[rustyray::remote]
async fn count(values: &Vec<u64>) -> usize {
    values.len()
}

#[rustyray::remote]
fn mean(values: &[f64], weights: &[u8]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64 + weights.len() as f64
}

#[rustyray::actor]
struct Cache {
    kept: Option<Arc<Vec<u64>>>,
}

#[rustyray::actor]
impl Cache {
    fn new(first: Arc<Vec<u64>>) -> Self {
        Cache { kept: Some(first) }
    }

    fn keep(&mut self, values: Arc<Vec<u64>>) {
        self.kept = Some(values);
    }

    fn len(&self, values: &Vec<u64>) -> usize {
        values.len() + self.kept.as_ref().map_or(0, |k| k.len())
    }

    async fn len_async(&self, values: &Vec<u64>) -> usize {
        values.len()
    }

    async fn first(&self, values: &[u64]) -> Option<u64> {
        values.first().copied()
    }
}

fn main() {
    let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(1)).unwrap();
    let _in = rt.enter();
    let r = rustyray::put(vec![1u64, 2, 3]).unwrap();
    let t = total::remote(&r, Arc::new(2u64), "ab".to_string());
    assert_eq!(rustyray::get(&t).unwrap(), 14);
    assert_eq!(rustyray::get(&count::remote(vec![1u64])).unwrap(), 1);
    let cache = Cache::remote(Arc::new(vec![0u64]));
    cache.keep(r.clone());
    assert_eq!(rustyray::get(&cache.len(&r)).unwrap(), 6);
    assert_eq!(rustyray::get(&cache.first(&r)).unwrap(), Some(1));
    assert_eq!(rustyray::get(&cache.len_async(r)).unwrap(), 3);
    let floats = rustyray::put(vec![1.0f64, 3.0]).unwrap();
    let m = mean::remote(&floats, Arc::new(vec![0u8]));
    assert_eq!(rustyray::get(&m).unwrap(), 3.0);
}
