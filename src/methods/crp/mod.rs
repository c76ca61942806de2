//! Concept Relevance Propagation (Achtibat et al. 2023) as zennit-crp 0.6 computes it, on the LRP
//! pass of [`crate::methods::lrp`]: a concept is a set of channels of a layer; conditioning on it
//! masks the relevance at that layer to those channels ([`conditional`]); ranking concepts is
//! reading the relevance per channel; relevance maximisation finds, over a data set, the inputs
//! where each channel is most relevant or most active and crops them to the region the
//! channel's single-neuron heatmap covers ([`maximize`], [`crop`], [`atlas`]); an attribution
//! graph decomposes a concept into the concepts of the layers below ([`graph`]).

pub mod atlas;
pub mod conditional;
pub mod crop;
pub mod graph;
pub mod maximize;
pub mod render;

use std::fmt;
use std::str::FromStr;

pub use conditional::{
    ConditionalResult, Mask, RankedConcept, channel_relevance, conditional_relevance,
    propagate_masked, rank_channels,
};

/// A concept: channels of one layer, written `layer:channel[,channel…]` (e.g. `features.28:7,12`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Concept {
    /// Node name of the layer.
    pub layer: String,
    /// Channels that together form the concept.
    pub channels: Vec<usize>,
}

impl FromStr for Concept {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (layer, list) = s.rsplit_once(':').ok_or_else(|| {
            format!("concept '{s}' is not of the form layer:channel[,channel...]")
        })?;
        let channels = list
            .split(',')
            .map(|c| {
                c.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("concept '{s}': '{c}' is not a channel number"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if layer.is_empty() {
            return Err(format!("concept '{s}' names no layer"));
        }
        Ok(Concept {
            layer: layer.to_string(),
            channels,
        })
    }
}

impl fmt::Display for Concept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.channels.iter().map(|c| c.to_string()).collect();
        write!(f, "{}:{}", self.layer, list.join(","))
    }
}
