// What a borrowed parameter cannot be: each is refused at its own span, all at once (a slice
// of other than plain numbers is refused by the type check after these).
#[rustyray::remote]
fn mutable(v: &mut Vec<u8>) {
    v.push(1);
}

#[rustyray::remote]
fn text(s: &str, bytes: &[u8], pinned: &'static String) -> usize {
    s.len() + bytes.len() + pinned.len()
}

#[rustyray::remote]
fn words(words: &[String]) -> usize {
    words.len()
}

#[rustyray::actor]
struct Store;

#[rustyray::actor]
impl Store {
    fn new() -> Self {
        Store
    }

    fn put(&mut self, key: &str, value: &mut Vec<u8>) {
        let _ = (key, value);
    }
}

fn main() {}
