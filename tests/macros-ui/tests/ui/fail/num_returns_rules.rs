// `num_returns = N` needs a tuple of N values: refused at the return type's span.
#[rustyray::remote(num_returns = 2)]
fn not_a_tuple() -> u64 {
    1
}

#[rustyray::remote(num_returns = 3)]
fn wrong_arity() -> anyhow::Result<(u64, String)> {
    Ok((1, String::new()))
}

#[rustyray::remote(num_returns = 9)]
fn too_many() -> (u8, u8) {
    (1, 2)
}


#[rustyray::actor]
struct Pair;

#[rustyray::actor]
impl Pair {
    #[rustyray(num_returns = 2)]
    fn new() -> Self {
        Pair
    }

    #[rustyray(num_returns = 2)]
    fn one(&self) -> u8 {
        1
    }

    #[rustyray(num_returns)]
    fn unclear(&self) -> (u8, u8) {
        (1, 2)
    }
}

fn main() {}
