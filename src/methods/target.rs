//! Which class an explanation is for.

use std::str::FromStr;

use super::MethodError;
use crate::graph::ModelCard;

/// The class (or classes) to explain for each image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// The class with the largest logit (the default).
    #[default]
    Predicted,
    /// A class by output index.
    Index(usize),
    /// A class by name, looked up in the model card.
    Name(String),
    /// `neg:<class>`: the negative of a binary logit `z` whose positive class is `<class>` (a
    /// name or index), i.e. `−z`, the logit of `1 − σ(z)`; see [`crate::graph::head`].
    Negative(String),
    /// Every class: each image is explained once per class.
    All,
}

impl std::fmt::Display for Target {
    /// The text [`Target::from_str`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Predicted => f.write_str("pred"),
            Target::Index(i) => write!(f, "{i}"),
            Target::Name(name) => f.write_str(name),
            Target::Negative(class) => write!(f, "neg:{class}"),
            Target::All => f.write_str("all"),
        }
    }
}

impl FromStr for Target {
    type Err = MethodError;

    /// `pred` / `predicted`, `all`, an index, a class name, or `neg:<class>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(MethodError::Invalid("empty target".into()));
        }
        Ok(match s {
            "pred" | "predicted" => Target::Predicted,
            "all" => Target::All,
            _ if s.starts_with("neg:") => Target::Negative(s["neg:".len()..].trim().to_string()),
            _ => match s.parse::<usize>() {
                Ok(i) => Target::Index(i),
                Err(_) => Target::Name(s.to_string()),
            },
        })
    }
}

/// Index of the largest value of each row of a row-major `[rows, classes]` matrix.
pub fn argmax_rows(values: &[f32], classes: usize) -> Vec<usize> {
    values
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

impl Target {
    /// The classes to explain for each image, given the logits `[images, classes]` (row-major)
    /// and the card's class names.
    pub fn resolve(
        &self,
        logits: &[f32],
        classes: usize,
        card: &ModelCard,
    ) -> Result<Vec<Vec<usize>>, MethodError> {
        let images = logits.len() / classes.max(1);
        let each = |c: usize| vec![vec![c]; images];
        match self {
            Target::Predicted => Ok(argmax_rows(logits, classes)
                .into_iter()
                .map(|c| vec![c])
                .collect()),
            Target::All => Ok(vec![(0..classes).collect(); images]),
            Target::Index(i) if *i < classes => Ok(each(*i)),
            Target::Index(i) => Err(MethodError::Invalid(format!(
                "target class {i} does not exist; the model has {classes} classes (0..{})",
                classes.saturating_sub(1)
            ))),
            Target::Negative(class) => Ok(each(negative_of(class, classes, card)?)),
            Target::Name(name) => match card.classes.iter().position(|c| c == name) {
                Some(i) if i < classes => Ok(each(i)),
                _ => Err(MethodError::Invalid(if card.classes.is_empty() {
                    format!(
                        "unknown class '{name}': the model card names no classes; give an index 0..{}",
                        classes.saturating_sub(1)
                    )
                } else {
                    format!(
                        "unknown class '{name}'; classes: {}",
                        card.classes.join(", ")
                    )
                })),
            },
        }
    }
}

/// The output index of the negative of binary-logit class `class`: a binary logit `z` is
/// presented as `[−z, z]`, so the negative of one class is the other.
fn negative_of(class: &str, classes: usize, card: &ModelCard) -> Result<usize, MethodError> {
    if card.head() != crate::graph::Head::BinaryLogit || classes != 2 {
        return Err(MethodError::Invalid(format!(
            "target 'neg:{class}' needs a binary-logit model (one output); this model's head is {} \
             with {classes} classes — name the class to explain instead",
            card.head()
        )));
    }
    match card.class_index(class) {
        Some(i) if i < 2 => Ok(1 - i),
        _ => Err(MethodError::Invalid(format!(
            "unknown class '{class}' in target 'neg:{class}'; classes: {}, {}",
            card.class_name(0),
            card.class_name(1)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        assert_eq!("pred".parse::<Target>().unwrap(), Target::Predicted);
        assert_eq!("all".parse::<Target>().unwrap(), Target::All);
        assert_eq!("3".parse::<Target>().unwrap(), Target::Index(3));
        assert_eq!(
            "glioma".parse::<Target>().unwrap(),
            Target::Name("glioma".into())
        );
        let card = ModelCard {
            classes: vec!["a".into(), "b".into(), "c".into()],
            num_classes: 3,
            ..Default::default()
        };
        let logits = [0.1, 0.9, 0.3, 2.0, -1.0, 0.0];
        assert_eq!(
            Target::Predicted.resolve(&logits, 3, &card).unwrap(),
            vec![vec![1], vec![0]]
        );
        assert_eq!(
            Target::Name("c".into()).resolve(&logits, 3, &card).unwrap(),
            vec![vec![2], vec![2]]
        );
        assert_eq!(
            Target::All.resolve(&logits, 3, &card).unwrap(),
            vec![vec![0, 1, 2], vec![0, 1, 2]]
        );
        let err = Target::Name("d".into())
            .resolve(&logits, 3, &card)
            .unwrap_err();
        assert!(err.to_string().contains("a, b, c"), "{err}");
        assert!(Target::Index(3).resolve(&logits, 3, &card).is_err());
    }
}
