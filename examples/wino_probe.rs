use relevance::engine::kernels::conv::ConvGeometry;
use relevance::engine::kernels::winograd::{self, FilterTransform, Tile};
use std::time::Instant;
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (c, size, secs) = (args[0], args[1], args[2]);
    let g = ConvGeometry {
        batch: 1,
        c_in: c,
        in_hw: [size, size],
        c_out: c,
        kernel: [3, 3],
        out_hw: [size, size],
        stride: [1, 1],
        dilation: [1, 1],
        pad_before: [1, 1],
    };
    let x: Vec<f32> = (0..c * size * size)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let w: Vec<f32> = (0..c * c * 9)
        .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let tile = winograd::choose(&g).unwrap_or(Tile::Four);
    let f = FilterTransform::forward(&w, c, c, tile);
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs() < secs as u64 {
        winograd::convolve(&x, &f, None, &g);
        n += 1;
    }
    println!("{:.3} ms", t0.elapsed().as_secs_f64() * 1e3 / n as f64);
}
