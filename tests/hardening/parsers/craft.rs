//! Generators of the hostile files the parser cases and the fuzz seeds use: pickles written
//! opcode by opcode (protocol 2), `torch.save` zip archives around them, ONNX models built
//! from the importer's own `prost` messages, `.npy` headers and `.safetensors` files. Every
//! file is small; what makes it hostile is what it claims.

#![allow(dead_code)]

use std::io::Write;

use prost::Message;
use relevance::graph::import::onnx::proto;

/// A protocol-2 pickle under construction.
#[derive(Default, Clone)]
pub struct Pickle(pub Vec<u8>);

impl Pickle {
    /// `PROTO 2`.
    pub fn new() -> Pickle {
        Pickle(vec![0x80, 2])
    }
    /// Raw opcodes.
    pub fn op(mut self, bytes: &[u8]) -> Pickle {
        self.0.extend_from_slice(bytes);
        self
    }
    /// `BINUNICODE`.
    pub fn str(self, s: &str) -> Pickle {
        let mut b = vec![b'X'];
        b.extend((s.len() as u32).to_le_bytes());
        b.extend(s.as_bytes());
        self.op(&b)
    }
    /// An integer: `BININT` when it fits 32 bits, `LONG1` otherwise.
    pub fn int(self, v: i64) -> Pickle {
        if let Ok(small) = i32::try_from(v) {
            let mut b = vec![b'J'];
            b.extend(small.to_le_bytes());
            self.op(&b)
        } else {
            let mut b = vec![0x8a, 8];
            b.extend(v.to_le_bytes());
            self.op(&b)
        }
    }
    /// `GLOBAL module\nname\n`.
    pub fn global(self, module: &str, name: &str) -> Pickle {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    /// A tuple of integers.
    pub fn int_tuple(self, values: &[i64]) -> Pickle {
        let mut p = self.op(b"(");
        for &v in values {
            p = p.int(v);
        }
        p.op(b"t")
    }
    /// `STOP`.
    pub fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

/// A tensor entry of a crafted state dict: a float32 view of storage `"0"`.
pub struct View<'a> {
    pub key: &'a str,
    pub storage_elements: i64,
    pub offset: i64,
    pub size: &'a [i64],
    pub stride: &'a [i64],
}

impl Pickle {
    /// `_rebuild_tensor_v2(<storage "0">, offset, size, stride, False, OrderedDict())`.
    pub fn tensor(self, v: &View) -> Pickle {
        self.global("torch._utils", "_rebuild_tensor_v2")
            .op(b"(")
            .op(b"(")
            .str("storage")
            .global("torch", "FloatStorage")
            .str("0")
            .str("cpu")
            .int(v.storage_elements)
            .op(b"tQ")
            .int(v.offset)
            .int_tuple(v.size)
            .int_tuple(v.stride)
            .op(&[0x89])
            .global("collections", "OrderedDict")
            .op(b")R")
            .op(b"tR")
    }
}

/// The `data.pkl` of a `torch.save` state dict `{key: tensor}` whose tensors all view one
/// float32 storage `"0"`.
pub fn state_dict_pickle(views: &[View]) -> Vec<u8> {
    let mut p = Pickle::new().op(b"}(");
    for v in views {
        p = p.str(v.key).tensor(v);
    }
    p.op(b"u").stop()
}

/// A zip-format `torch.save` file: `archive/data.pkl`, `archive/byteorder` and one
/// `archive/data/<key>` entry per storage, stored uncompressed as torch does.
pub fn pth_zip(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut entry = |name: &str, bytes: &[u8]| {
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
    };
    entry("archive/data.pkl", pickle);
    entry("archive/byteorder", b"little");
    for (key, bytes) in storages {
        entry(&format!("archive/data/{key}"), bytes);
    }
    zip.finish().unwrap().into_inner()
}

/// A `.pth` with one float32 storage of `storage_elements` zeros and the given views of it.
pub fn pth_with_views(views: &[View]) -> Vec<u8> {
    let elements = views.first().map_or(0, |v| v.storage_elements) as usize;
    pth_zip(
        &state_dict_pickle(views),
        &[("0", &vec![0u8; elements * 4])],
    )
}

/// A `.npy` header (version 1) declaring `descr` and `shape`, padded to 64 bytes like numpy.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// A complete float32 `.npy` of `shape` filled with `0.5`.
pub fn npy_f32(shape: &[usize]) -> Vec<u8> {
    let mut out = npy_header("<f4", shape);
    let n: usize = shape.iter().product();
    for _ in 0..n {
        out.extend(0.5f32.to_le_bytes());
    }
    out
}

/// A `.safetensors` file from `(key, dtype, shape, data)` entries, laid out one after another.
pub fn safetensors(entries: &[(&str, &str, &[usize], &[u8])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (key, dtype, shape, bytes) in entries {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            key.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string().into_bytes();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

/// A float tensor value info of the given (fixed) dims.
pub fn value_info(name: &str, dims: &[i64]) -> proto::ValueInfoProto {
    proto::ValueInfoProto {
        name: name.into(),
        r#type: Some(proto::TypeProto {
            tensor_type: Some(proto::TypeProtoTensor {
                elem_type: proto::data_type::FLOAT,
                shape: Some(proto::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| proto::Dimension {
                            dim_value: Some(d),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

/// A node.
pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> proto::NodeProto {
    proto::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    }
}

/// An INTS attribute.
pub fn ints_attr(name: &str, values: &[i64]) -> proto::AttributeProto {
    proto::AttributeProto {
        name: name.into(),
        r#type: 7, // AttributeProto.INTS
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// An int64 initialiser.
pub fn int64_tensor(name: &str, dims: &[i64], values: &[i64]) -> proto::TensorProto {
    proto::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: proto::data_type::INT64,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// A float initialiser filled with `0.1`.
pub fn float_tensor(name: &str, dims: &[i64]) -> proto::TensorProto {
    let n: i64 = dims.iter().product();
    proto::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: proto::data_type::FLOAT,
        float_data: vec![0.1; n as usize],
        ..Default::default()
    }
}

/// An opset-13 model of one graph with input `x` and output `y`.
pub fn onnx_model(
    input_dims: &[i64],
    nodes: Vec<proto::NodeProto>,
    initializer: Vec<proto::TensorProto>,
) -> Vec<u8> {
    proto::ModelProto {
        ir_version: 8,
        opset_import: vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "hardening".into(),
        graph: Some(proto::GraphProto {
            node: nodes,
            name: "g".into(),
            initializer,
            input: vec![value_info("x", input_dims)],
            output: vec![value_info("y", &[])],
        }),
    }
    .encode_to_vec()
}

/// `x → GlobalAveragePool → Flatten → y`, the tail that makes any `[1, C, H, W]` a classifier
/// with C outputs; `body` produces `h` from `x`.
pub fn classifier(
    input_dims: &[i64],
    mut body: Vec<proto::NodeProto>,
    init: Vec<proto::TensorProto>,
) -> Vec<u8> {
    body.push(node("GlobalAveragePool", "gap", &["h"], &["p"]));
    body.push(node("Flatten", "flat", &["p"], &["y"]));
    onnx_model(input_dims, body, init)
}
