//! The classification head of a graph and the backbone below it, for fine-tuning with a frozen
//! backbone: the backbone runs in inference mode (BatchNorm with running statistics, no
//! dropout, no autodiff tape) and only the head trains.

use crate::graph::{Graph, GraphError, Node, NodeId, Op};

/// A graph cut into a backbone (nodes `0..=cut`) and a head reading only the cut node.
#[derive(Clone, Debug)]
pub struct HeadSplit {
    /// The backbone; its output is the cut node.
    pub backbone: Graph,
    /// The head; its input node stands for the backbone's output.
    pub head: Graph,
    /// Parameter keys of the head.
    pub head_params: Vec<String>,
}

/// The cut node: the first node at or after the last convolution / BatchNorm such that every
/// later node reads only it or later nodes (so the head has a single input). For torchvision's
/// ResNets the head is `relu → avgpool → flatten → fc` after the last block's sum, for VGG the
/// `classifier`, for `small_cnn` the pooling, dropout and linear layer.
pub fn find_cut(graph: &Graph) -> Result<NodeId, GraphError> {
    let last_feature = graph
        .nodes
        .iter()
        .rposition(|n| matches!(n.op, Op::Conv2d(_) | Op::BatchNorm(_)))
        .ok_or_else(|| {
            GraphError::Invalid("graph has no convolution: no backbone to freeze".into())
        })?;
    let out = graph.output;
    (last_feature..out)
        .find(|&c| {
            graph.nodes[c + 1..=out]
                .iter()
                .all(|n| n.inputs.iter().all(|&i| i >= c))
        })
        .ok_or_else(|| GraphError::Invalid("cannot separate a classification head".into()))
}

/// Splits `graph` at [`find_cut`].
pub fn split_head(graph: &Graph) -> Result<HeadSplit, GraphError> {
    let cut = find_cut(graph)?;
    let mut backbone = graph.clone();
    backbone.nodes.truncate(cut + 1);
    backbone.output = cut;
    let used = |nodes: &[Node]| -> Vec<String> {
        let mut keys: Vec<String> = nodes
            .iter()
            .flat_map(|n| n.op.param_keys().into_iter().map(str::to_string))
            .collect();
        keys.dedup();
        keys
    };
    backbone
        .param_specs
        .retain(|s| used(&backbone.nodes).contains(&s.key));
    // Head: a fresh input node standing for the cut, then the remaining nodes re-indexed.
    let mut nodes = vec![Node {
        name: "input".into(),
        op: Op::Input,
        inputs: vec![],
    }];
    for n in &graph.nodes[cut + 1..=graph.output] {
        nodes.push(Node {
            name: n.name.clone(),
            op: n.op.clone(),
            inputs: n.inputs.iter().map(|&i| i - cut).collect(),
        });
    }
    let head_params = used(&nodes[1..]);
    let head = Graph {
        output: nodes.len() - 1,
        nodes,
        param_specs: graph
            .param_specs
            .iter()
            .filter(|s| head_params.contains(&s.key))
            .cloned()
            .collect(),
    };
    head.validate()?;
    Ok(HeadSplit {
        backbone,
        head,
        head_params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::zoo;

    #[test]
    fn heads_of_the_zoo_are_the_classifiers() {
        let s = split_head(&zoo::build("resnet18", 4, 3).unwrap()).unwrap();
        assert_eq!(s.head_params, vec!["fc.weight", "fc.bias"]);
        assert_eq!(s.backbone.nodes[s.backbone.output].name, "layer4.1.add");
        let s = split_head(&zoo::build("small_cnn", 2, 3).unwrap()).unwrap();
        assert_eq!(
            s.head_params,
            vec!["classifier.1.weight", "classifier.1.bias"]
        );
        let s = split_head(&zoo::build("vgg11", 3, 3).unwrap()).unwrap();
        assert!(s.head_params.iter().all(|k| k.starts_with("classifier.")));
        assert_eq!(s.head_params.len(), 6);
    }
}
