// `streaming` needs the items as the result, and items need `streaming`: each refused at its
// span, with what to write instead.
#[rustyray::remote(streaming)]
fn not_items() -> Vec<u64> {
    vec![1]
}

#[rustyray::remote]
fn forgot_streaming() -> impl Iterator<Item = u64> {
    0..3
}

#[rustyray::remote(backpressure = 2)]
fn backpressure_alone() -> u64 {
    1
}

#[rustyray::remote(streaming, num_returns = 2)]
fn both() -> impl Iterator<Item = (u8, u8)> {
    std::iter::empty()
}

#[rustyray::remote(streaming)]
fn no_item_type() -> impl IntoIterator<Item = u64> {
    0..3
}

#[rustyray::actor]
struct Source;

#[rustyray::actor]
impl Source {
    #[rustyray(streaming)]
    fn new() -> Self {
        Source
    }

    #[rustyray(backpressure = 1)]
    fn bounded(&self) -> u8 {
        1
    }

    fn items(&self) -> impl Iterator<Item = u8> {
        0..3
    }
}

fn main() {}
