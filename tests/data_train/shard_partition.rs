//! The shard partition (`relevance::data::shard`): disjoint, complete, balanced per class,
//! independent of the order the file system lists samples in, and bad `K/N` refused.

use relevance::data::shard::{SampleId, Shard, assign, keep};

fn ids(spec: &[(&str, usize)]) -> Vec<SampleId> {
    spec.iter()
        .flat_map(|&(class, n)| {
            (0..n).map(move |i| SampleId {
                class: class.into(),
                name: format!("{class}/img{i:03}.png"),
            })
        })
        .collect()
}

#[test]
fn shards_are_disjoint_complete_and_balanced_per_class() {
    let all = ids(&[("a", 10), ("b", 7), ("c", 1)]);
    for n in 1..=6 {
        let shard_of = assign(&all, n);
        // complete and disjoint: every sample has exactly one shard in 1..=n
        assert!(shard_of.iter().all(|&s| (1..=n).contains(&s)));
        for class in ["a", "b", "c"] {
            let size = all.iter().filter(|i| i.class == class).count();
            for k in 1..=n {
                let got = all
                    .iter()
                    .zip(&shard_of)
                    .filter(|(i, s)| i.class == class && **s == k)
                    .count();
                assert!(
                    got == size / n || got == size.div_ceil(n),
                    "class {class}, shard {k}/{n}: {got} of {size}"
                );
            }
        }
        for k in 1..=n {
            let got = shard_of.iter().filter(|&&s| s == k).count();
            assert!(got == all.len() / n || got == all.len().div_ceil(n));
        }
    }
}

#[test]
fn the_partition_does_not_depend_on_listing_order() {
    let all = ids(&[("x", 9), ("y", 5)]);
    let mut shuffled = all.clone();
    shuffled.reverse();
    shuffled.swap(2, 11);
    let a = assign(&all, 4);
    let b = assign(&shuffled, 4);
    for (i, id) in all.iter().enumerate() {
        let j = shuffled.iter().position(|s| s == id).unwrap();
        assert_eq!(a[i], b[j], "{id:?}");
    }
}

#[test]
fn keep_returns_the_union_of_the_shards_in_order() {
    let all = ids(&[("a", 5), ("b", 4)]);
    let kept: Vec<SampleId> = (1..=3)
        .flat_map(|k| keep(all.clone(), &Shard::new(k, 3).unwrap().into(), Clone::clone))
        .collect();
    let mut sorted = kept.clone();
    sorted.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    // by hand: a/0..4 → 1,2,3,1,2; b/0..3 → 3,1,2,3
    let first = keep(all.clone(), &Shard::new(1, 3).unwrap().into(), Clone::clone);
    let names: Vec<&str> = first.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a/img000.png", "a/img003.png", "b/img001.png"]);
}

#[test]
fn bad_shards_are_refused_with_the_rule() {
    for bad in ["0/4", "5/4", "1/0", "x/4", "3", "1/-2", "2/100001"] {
        let err = bad.parse::<Shard>().unwrap_err();
        assert!(err.contains(bad), "{err}");
    }
    assert_eq!("3/16".parse::<Shard>().unwrap(), Shard::new(3, 16).unwrap());
    assert_eq!(
        Shard::from_folder("3-of-16"),
        Some(Shard::new(3, 16).unwrap())
    );
    assert_eq!(Shard::from_folder("17-of-16"), None);
    assert_eq!(Shard::new(2, 5).unwrap().to_string(), "2/5");
}
