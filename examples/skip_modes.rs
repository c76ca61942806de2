//! The three treatments of ResNet skip connections side by side on a trained model:
//! `lrp-epsilon-plus-flat` maps with `--resnet-skip zennit | split | symmetric` for each image, the
//! checkerboard score and conservation error of each map, and one PNG grid (input, then one
//! overlay per mode).
//!
//! ```bash
//! cargo run --release --example skip_modes -- MODEL.safetensors OUT.png IMAGE...
//! ```

use std::path::PathBuf;

use relevance::data::image::load_input;
use relevance::graph::{LoadOptions, Model};
use relevance::methods::MapStyle;
use relevance::methods::lrp::{
    Composite, LrpModel, LrpOptions, SkipMode, checkerboard_scores, conservation_of,
};
use relevance::report::Scale;
use relevance::report::heatmap::{
    default_colormap, grid, input_image, normalise, overlay, plane, write_png,
};
use relevance::tensor::{T4, to_vec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: skip_modes MODEL OUT.png IMAGE...");
        std::process::exit(2);
    }
    let model = Model::load(&PathBuf::from(&args[0]), &LoadOptions::default()).unwrap();
    let out = PathBuf::from(&args[1]);
    let files: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
    let xs: Vec<T4> = files
        .iter()
        .map(|f| load_input(f, &model.card).unwrap())
        .collect();
    let x = T4::cat(xs, 0);
    let [n, c, h, w] = x.dims();
    let modes = [SkipMode::Zennit, SkipMode::Split, SkipMode::Symmetric];
    let mut rows: Vec<Vec<image::RgbImage>> = (0..n)
        .map(|i| {
            let row = to_vec(&x.clone().narrow(0, i, 1));
            vec![input_image(&row, c, h as u32, w as u32, &model.card)]
        })
        .collect();
    println!("image\tmode\tcheckerboard\tconservation_error");
    for skip in modes {
        let options = LrpOptions {
            skip,
            ..LrpOptions::default()
        };
        let lrp = LrpModel::new(&model, Composite::epsilon_plus_flat(), &options).unwrap();
        let acts = lrp.forward(x.clone()).unwrap();
        let logits = to_vec(acts.get(lrp.logits_node()).unwrap());
        let k = logits.len() / n;
        let targets: Vec<usize> = logits
            .chunks(k)
            .map(|r| (0..k).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap())
            .collect();
        let attribution = lrp.attribute(&x, &targets).unwrap();
        let boards = checkerboard_scores(&attribution.input);
        let conservation = conservation_of(&attribution);
        let values = to_vec(&attribution.input);
        let per = c * h * w;
        for i in 0..n {
            let stem = files[i].file_stem().unwrap().to_string_lossy();
            println!(
                "{stem}\t{skip}\t{:.4}\t{:.3}",
                boards[i], conservation[i].error
            );
            let map = plane(&values[i * per..(i + 1) * per], c, MapStyle::Signed);
            let norm = normalise(&map, MapStyle::Signed, Scale::default());
            let cmap = default_colormap(MapStyle::Signed);
            let picture = overlay(&rows[i][0], &norm, MapStyle::Signed, cmap, 0.8);
            rows[i].push(picture);
        }
    }
    write_png(&out, &grid(&rows, 4)).unwrap();
    eprintln!(
        "wrote {} (columns: input, zennit, split, symmetric)",
        out.display()
    );
}
