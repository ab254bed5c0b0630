// Every rule of #[remote] broken at once: all errors are reported together.
#[rustyray::remote(num_cpu = 2, max_retries = "3", retry_exceptions = yes)]
fn generic<T: Clone>(x: T, name: &str, f: impl Fn()) -> impl Clone {
    let _ = (name, f);
    x
}

#[rustyray::remote]
struct NotAFunction;

fn main() {}
