//! Stages: maximal chains of operators fused into one loop per subtask.
//!
//! A new stage starts at every source, at every operator whose input crosses workers
//! (`key_by`: hash; `rebalance`: round-robin; `union`: several inputs) and wherever the
//! declared parallelism changes (round-robin, as Flink does on such edges). A partitioning
//! word (`key_by`, `rebalance`, `union`) has no parallelism of its own: it takes that of the
//! operator after it, so a keyed operator always runs in its `key_by`'s stage.

use crate::check::parallelism_literal;
use crate::diagnostic::Diagnostics;
use crate::graph::Graph;
use crate::ops::{Exchange, OpKind};

/// A node's parallelism as far as the compiler knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Declared {
    /// The env's `--parallelism`.
    Default,
    /// A literal, or 1 for a non-parallel source.
    Fixed(usize),
}

impl Declared {
    pub fn literal(self) -> Option<usize> {
        match self {
            Declared::Default => None,
            Declared::Fixed(n) => Some(n),
        }
    }
}

/// How rows reach a node from its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Source,
    Forward,
    Hash,
    Rebalance,
}

pub struct Stage {
    pub id: usize,
    pub head: usize,
    pub nodes: Vec<usize>,
}

pub struct Plan {
    pub declared: Vec<Declared>,
    pub edge: Vec<Edge>,
    pub stage_of: Vec<usize>,
    pub stages: Vec<Stage>,
    /// No multi-input operator: with every parallelism 1 the job runs as one fused thread per
    /// source.
    pub fusable: bool,
}

impl Plan {
    /// Whether the edge into `node` crosses stages.
    pub fn is_boundary(&self, node: usize) -> bool {
        !matches!(self.edge[node], Edge::Forward | Edge::Source)
    }
}

pub fn plan(g: &Graph, diag: &mut Diagnostics) -> Plan {
    let n = g.nodes.len();
    let mut declared = vec![Declared::Default; n];
    for node in &g.nodes {
        declared[node.id] = match node.parallelism.as_ref().and_then(parallelism_literal) {
            Some(Ok(p)) => Declared::Fixed(p),
            _ if node.source_func.as_deref().is_some_and(|f| f != "source") => Declared::Fixed(1),
            _ => Declared::Default,
        };
    }
    // Timestamps are assigned in the source's split, and a side output leaves its operator
    // in the same subtask: same stage, same parallelism (unless set explicitly).
    for node in &g.nodes {
        if node.spec.kind == OpKind::Timestamps
            || node.spec.kind == OpKind::Broadcast
            || (node.spec.kind == OpKind::SideOutput && node.parallelism.is_none())
        {
            declared[node.id] = declared[node.inputs[0]];
        }
    }
    // `window_all` runs in one subtask, and so does its window function.
    for node in &g.nodes {
        if node.spec.kind == OpKind::WindowAll {
            declared[node.id] = Declared::Fixed(1);
            for &c in &node.outputs {
                declared[c] = Declared::Fixed(1);
            }
        }
    }
    // Partitionings and windows take their first consumer's parallelism (reverse order:
    // consumers have larger ids).
    for node in g.nodes.iter().rev() {
        if matches!(
            node.spec.kind,
            OpKind::KeyBy
                | OpKind::Rebalance
                | OpKind::Union
                | OpKind::Connect
                | OpKind::IntervalJoin
                | OpKind::WindowJoin
                | OpKind::Window
                | OpKind::CountWindow
        ) {
            if let Some(&c) = node.outputs.first() {
                declared[node.id] = declared[c];
            }
        }
    }
    let mut edge = vec![Edge::Forward; n];
    let mut stage_of = vec![0; n];
    let mut stages: Vec<Stage> = Vec::new();
    for node in &g.nodes {
        let e = if node.is_source() {
            Edge::Source
        } else {
            // A `key_by` read only by a two-input operator partitions on that operator's input
            // edge (hash by this key) instead of starting a stage of its own.
            let absorbed = |k: &crate::graph::Node| {
                k.spec.kind == OpKind::KeyBy
                    && !k.outputs.is_empty()
                    && k.outputs.iter().all(|&c| {
                        matches!(
                            g.nodes[c].spec.kind,
                            OpKind::Connect | OpKind::IntervalJoin | OpKind::WindowJoin
                        )
                    })
            };
            let two_input = matches!(
                node.spec.kind,
                OpKind::Connect | OpKind::IntervalJoin | OpKind::WindowJoin
            );
            match node.spec.exchange {
                Exchange::Hash if absorbed(node) => {
                    if declared[node.inputs[0]] == declared[node.id] {
                        Edge::Forward
                    } else {
                        Edge::Rebalance
                    }
                }
                Exchange::Hash => Edge::Hash,
                // A broadcast input reaches every subtask whatever this edge's partitioning.
                Exchange::Merge
                    if two_input
                        && absorbed(&g.nodes[node.inputs[0]])
                        && node.inputs.iter().all(|&i| {
                            absorbed(&g.nodes[i]) || g.nodes[i].spec.kind == OpKind::Broadcast
                        }) =>
                {
                    Edge::Hash
                }
                Exchange::Merge
                    if two_input
                        && node.inputs.iter().any(|&i| g.nodes[i].spec.keyed_output)
                        && !node
                            .inputs
                            .iter()
                            .any(|&i| g.nodes[i].spec.kind == OpKind::Broadcast) =>
                {
                    diag.error(node.span, format_args!(
                        "`{}` joins two keyed streams or two streams that are not keyed: add `key_by` to both inputs, or to neither",
                        node.spec.word
                    ));
                    Edge::Rebalance
                }
                Exchange::Rebalance | Exchange::Merge => Edge::Rebalance,
                Exchange::Forward if declared[node.inputs[0]] != declared[node.id] => {
                    let input = &g.nodes[node.inputs[0]];
                    if input.spec.kind == OpKind::KeyBy || input.is_window() {
                        diag.error(node.span, format_args!(
                            "`{}` reads a keyed stream, so it must have the parallelism of the operators sharing its `key_by`",
                            node.spec.word
                        ));
                    }
                    Edge::Rebalance
                }
                Exchange::Forward => Edge::Forward,
            }
        };
        edge[node.id] = e;
        if e == Edge::Forward {
            let s = stage_of[node.inputs[0]];
            stage_of[node.id] = s;
            stages[s].nodes.push(node.id);
        } else {
            let s = stages.len();
            stage_of[node.id] = s;
            stages.push(Stage {
                id: s,
                head: node.id,
                nodes: vec![node.id],
            });
        }
    }
    let fusable = !g.nodes.iter().any(|n| {
        matches!(
            n.spec.kind,
            OpKind::Union | OpKind::Connect | OpKind::IntervalJoin | OpKind::WindowJoin
        )
    });
    Plan {
        declared,
        edge,
        stage_of,
        stages,
        fusable,
    }
}
