use relevance::engine::kernels::conv::{ConvGeometry, conv2d_forward};
use relevance::engine::kernels::winograd::{FilterTransform, Tile, convolve};
use std::time::Instant;
fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (c, hw, reps) = (args[0], args[1], args[2]);
    let g = ConvGeometry { batch: 1, c_in: c, in_hw: [hw, hw], c_out: c, kernel: [3, 3], out_hw: [hw, hw], stride: [1, 1], dilation: [1, 1], pad_before: [1, 1] };
    let x: Vec<f32> = (0..c * hw * hw).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let w: Vec<f32> = (0..c * c * 9).map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5).collect();
    for tile in [Tile::Four] {
        let f = FilterTransform::forward(&w, c, c, tile);
        let t = Instant::now();
        for _ in 0..reps { std::hint::black_box(convolve(&x, &f, None, &g)); }
        println!("{tile:?} {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
    if std::env::var("SKIP").is_ok() { return; }
    let t = Instant::now();
    for _ in 0..reps { std::hint::black_box(conv2d_forward(&x, &w, None, &g)); }
    println!("im2col {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
}
