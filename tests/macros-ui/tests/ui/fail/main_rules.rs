#[rustyray::main(num_cpus = 2, threads = 4)]
fn main(args: Vec<String>) {
    let _ = args;
}
