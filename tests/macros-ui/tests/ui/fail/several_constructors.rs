// The constructor must be unambiguous.
#[rustyray::actor]
struct Pair(u8);

#[rustyray::actor]
impl Pair {
    fn left() -> Self {
        Pair(0)
    }
    fn right() -> Self {
        Pair(1)
    }
}

#[rustyray::actor]
struct Empty;

#[rustyray::actor]
impl Empty {
    fn touch(&self) {}
}

fn main() {}
