// `put` takes owned, thread-safe, serializable values only.
fn main() {
    let _ = rustyray::put(std::rc::Rc::new(5u8));
}
