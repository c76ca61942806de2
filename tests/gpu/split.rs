//! The arithmetic of batches that fit a device (`src/methods/fit.rs`), against hand-computed
//! sizes; no GPU needed (runs in every build of this binary).

use relevance::methods::MethodError;
use relevance::methods::fit::{
    RowBytes, in_batches_that_fit, largest_row_bytes, rows_per_pass, rows_that_fit, sub_batches,
};
use relevance::tensor::from_vec;
use relevance::{Model, ModelCard};

const MIB: u64 = 1 << 20;

#[test]
fn rows_that_fit_are_the_limit_over_the_row_size_and_at_least_one() {
    // Lavapipe binds 128 MiB.
    assert_eq!(rows_that_fit(128 * MIB, 16 * MIB), 8);
    assert_eq!(rows_that_fit(128 * MIB, 16 * MIB + 1), 7);
    assert_eq!(rows_that_fit(128 * MIB, 43 * MIB), 2);
    assert_eq!(rows_that_fit(128 * MIB, 200 * MIB), 1, "one row is tried");
    // A 4 GiB binding limit and ResNet-50's stem at 224² (64 × 112² floats = 3 136 KiB a row).
    assert_eq!(rows_that_fit(4096 * MIB, 64 * 112 * 112 * 4), 1337);
}

#[test]
fn sub_batches_cover_the_rows_in_order() {
    assert_eq!(sub_batches(10, 4), vec![0..4, 4..8, 8..10]);
    assert_eq!(sub_batches(8, 8), vec![0..8]);
    assert_eq!(sub_batches(3, 100), vec![0..3]);
    assert_eq!(sub_batches(5, 1), vec![0..1, 1..2, 2..3, 3..4, 4..5]);
    assert_eq!(sub_batches(0, 3), Vec::<std::ops::Range<usize>>::new());
}

fn zoo(arch: &str, side: usize) -> Model {
    let card = ModelCard {
        num_classes: 10,
        input_size: [side, side],
        ..ModelCard::default()
    };
    Model::init(arch, card, 1).expect("zoo model")
}

/// The largest activation per row, by hand from the architectures: small_cnn's first conv
/// gives 16 channels at full resolution (its later convs have 32, 64, 128 channels at ½, ¼,
/// ⅛ of the side: 4, 8 times fewer values); ResNet-18's stem conv gives 64 channels at half
/// the side, its max pooling halves it again before any wider layer.
#[test]
fn the_largest_row_is_the_widest_activation_of_the_graph() {
    let _guard = super::common::lock();
    let small = zoo("small_cnn", 32);
    let x = from_vec(vec![0.5; 2 * 3 * 32 * 32], [2, 3, 32, 32]);
    assert_eq!(largest_row_bytes(&small, &x).unwrap(), 16 * 32 * 32 * 4);
    let resnet = zoo("resnet18", 64);
    let x = from_vec(vec![0.5; 3 * 64 * 64], [1, 3, 64, 64]);
    assert_eq!(largest_row_bytes(&resnet, &x).unwrap(), 64 * 32 * 32 * 4);
    // Measured once per input shape.
    let cache = RowBytes::default();
    assert_eq!(cache.of(&resnet, &x).unwrap(), 64 * 32 * 32 * 4);
    assert_eq!(cache.of(&resnet, &x).unwrap(), 64 * 32 * 32 * 4);
}

/// On the CPU there is no buffer limit: the work runs once on the whole batch and the
/// methods' own batch is untouched.
#[test]
fn on_the_cpu_the_batch_is_not_split() {
    let _guard = super::common::lock();
    let small = zoo("small_cnn", 16);
    let x = from_vec(vec![0.5; 5 * 3 * 16 * 16], [5, 3, 16, 16]);
    let parts = in_batches_that_fit(&small, &RowBytes::default(), &x, 7, "test", |rows, sub| {
        Ok::<_, MethodError>((rows, sub.dims()[0], rows_per_pass(7)))
    })
    .unwrap();
    assert_eq!(parts, vec![(0..5, 5, 7)]);
}
