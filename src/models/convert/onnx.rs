//! Writing an ONNX model: the little of the Protocol Buffers wire format
//! and of `onnx.proto` that a graph of standard operators with float and
//! int64 initializers needs. Field numbers are those of `onnx.proto`
//! (ONNX 1.x); the output loads in ONNX Runtime and passes `onnx.checker`.
//!
//! [`Graph`] collects initializers and nodes (each node's output is named
//! after it, so a graph reads as a chain of calls); [`Graph::into_model`]
//! wraps it with the opset and IR version.

/// A Protocol Buffers message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(((field as u64) << 3) | wire_type as u64);
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// An int64 or int32 or enum field (negative numbers take ten bytes,
    /// as Protocol Buffers encodes them).
    fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }

    fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn message(&mut self, field: u32, m: &Message) {
        self.bytes(field, &m.0);
    }
}

/// ONNX tensor element types (`TensorProto.DataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    Float = 1,
    Int64 = 7,
}

/// A dimension of a graph input or output: fixed or named (dynamic).
#[derive(Clone, Copy, Debug)]
pub enum Dim<'a> {
    Fixed(i64),
    Named(&'a str),
}

/// A node attribute.
#[derive(Clone, Copy, Debug)]
pub enum Attr<'a> {
    Float(&'a str, f32),
    Int(&'a str, i64),
    Ints(&'a str, &'a [i64]),
}

/// An ONNX graph under construction.
pub struct Graph {
    name: String,
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    inputs: Vec<Message>,
    outputs: Vec<Message>,
    count: usize,
}

impl Graph {
    pub fn new(name: &str) -> Self {
        Graph {
            name: name.to_string(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            count: 0,
        }
    }

    /// Declares a graph input; returns its name.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem, dims));
        name.to_string()
    }

    /// Declares `value` (a node's output) as a graph output.
    pub fn output(&mut self, value: &str, elem: ElemType, dims: &[Dim]) {
        self.outputs.push(value_info(value, elem, dims));
    }

    /// A float initializer of the given shape; returns its name.
    pub fn floats(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, ElemType::Float, dims, &raw)
    }

    /// An int64 initializer of the given shape; returns its name.
    pub fn int64s(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, ElemType::Int64, dims, &raw)
    }

    fn initializer(&mut self, name: &str, elem: ElemType, dims: &[usize], raw: &[u8]) -> String {
        let mut t = Message::default();
        for &d in dims {
            t.int(1, d as i64);
        }
        t.int(2, elem as i64);
        t.string(8, name);
        t.bytes(9, raw);
        self.initializers.push(t);
        name.to_string()
    }

    /// A node of the default domain with one output, named after the
    /// operator and a counter; returns that name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        self.count += 1;
        let output = format!("{op}_{}", self.count);
        self.node_into(op, inputs, attrs, &output);
        output
    }

    /// A node writing to a given output name (for graph outputs).
    pub fn node_into(&mut self, op: &str, inputs: &[&str], attrs: &[Attr], output: &str) {
        let mut n = Message::default();
        for i in inputs {
            n.string(1, i);
        }
        n.string(2, output);
        n.string(3, output);
        n.string(4, op);
        for attr in attrs {
            let mut a = Message::default();
            match *attr {
                Attr::Float(name, v) => {
                    a.string(1, name);
                    a.float(2, v);
                    a.int(20, 1);
                }
                Attr::Int(name, v) => {
                    a.string(1, name);
                    a.int(3, v);
                    a.int(20, 2);
                }
                Attr::Ints(name, vs) => {
                    a.string(1, name);
                    for &v in vs {
                        a.int(8, v);
                    }
                    a.int(20, 7);
                }
            }
            n.message(5, &a);
        }
        self.nodes.push(n);
    }

    /// The serialized `ModelProto`: IR version 9, the default opset at
    /// `opset`.
    pub fn into_model(self, opset: i64, producer: &str) -> Vec<u8> {
        let mut g = Message::default();
        for n in &self.nodes {
            g.message(1, n);
        }
        g.string(2, &self.name);
        for t in &self.initializers {
            g.message(5, t);
        }
        for i in &self.inputs {
            g.message(11, i);
        }
        for o in &self.outputs {
            g.message(12, o);
        }
        let mut model = Message::default();
        model.int(1, 9);
        model.string(2, producer);
        model.message(7, &g);
        let mut opset_id = Message::default();
        opset_id.string(1, "");
        opset_id.int(2, opset);
        model.message(8, &opset_id);
        model.0
    }
}

fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> Message {
    let mut shape = Message::default();
    for d in dims {
        let mut dim = Message::default();
        match *d {
            Dim::Fixed(v) => dim.int(1, v),
            Dim::Named(p) => dim.string(2, p),
        }
        shape.message(1, &dim);
    }
    let mut tensor = Message::default();
    tensor.int(1, elem as i64);
    tensor.message(2, &shape);
    let mut ty = Message::default();
    ty.message(1, &tensor);
    let mut v = Message::default();
    v.string(1, name);
    v.message(2, &ty);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_follow_the_wire_format() {
        let mut m = Message::default();
        m.int(1, 150);
        assert_eq!(m.0, [0x08, 0x96, 0x01]);
        let mut m = Message::default();
        m.int(2, -1);
        assert_eq!(
            m.0.len(),
            11,
            "a negative int64 takes ten bytes after the key"
        );
        let mut m = Message::default();
        m.string(2, "testing");
        assert_eq!(m.0, b"\x12\x07testing");
        let mut m = Message::default();
        m.float(2, 1.0);
        assert_eq!(m.0, [0x15, 0, 0, 0x80, 0x3f]);
    }

    #[test]
    fn nodes_are_named_after_their_operator() {
        let mut g = Graph::new("g");
        let x = g.input("x", ElemType::Float, &[Dim::Named("n")]);
        let y = g.node("Relu", &[&x], &[]);
        let z = g.node("Relu", &[&y], &[]);
        assert_eq!((y.as_str(), z.as_str()), ("Relu_1", "Relu_2"));
        assert!(!g.into_model(20, "test").is_empty());
    }
}
