//! A crate that depends on `rustyray` alone and uses every macro: it compiles and its test
//! passes only if the generated code names nothing but `::rustyray::` paths and std.

/// Squares a number remotely.
#[rustyray::remote(num_cpus = 1)]
pub fn square(x: u64) -> u64 {
    x * x
}

/// Parses remotely; `Err` fails the task.
#[rustyray::remote]
pub async fn parse(text: String) -> Result<u64, String> {
    std::future::ready(text.parse::<u64>().map_err(|e| e.to_string())).await
}

/// A tally actor.
#[rustyray::actor]
pub struct Tally {
    total: u64,
}

#[rustyray::actor]
impl Tally {
    /// Starts at `start`.
    pub fn new(start: u64) -> Self {
        Tally { total: start }
    }

    /// Adds `n`.
    pub fn add(&mut self, n: u64) -> u64 {
        self.total += n;
        self.total
    }

    /// The total so far.
    pub async fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_needs_only_rustyray() {
        let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(2)).unwrap();
        let _guard = rt.enter();
        let tally = Tally::remote(0);
        let parsed = parse::remote("12".to_string());
        tally.add(square::remote(&parsed));
        tally.add(1);
        assert_eq!(rustyray::get(&tally.total()).unwrap(), 145);
        assert!(rustyray::get(&parse::remote("x".to_string())).is_err());
    }
}
