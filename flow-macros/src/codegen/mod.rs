//! Code generation for `flow!`: the typed walk over the graph, the static plan, and one task
//! per stage subtask whose chain is the stage's operators nested into one generic type.
//!
//! Generated code names only `::flow::__private` (and `::flow` re-exports).

mod plan_static;

use crate::graph::{Graph, Node};
use crate::ops::{self, OpKind};
use crate::parse::FlowInput;
use crate::plan::{Edge, Plan};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use syn::Ident;

pub fn expand(input: &FlowInput, g: &Graph, plan: &Plan) -> TokenStream {
    let env = &input.env;
    let handles = g
        .nodes
        .iter()
        .filter(|n| n.spec.kind == OpKind::Collect)
        .map(ops::collect::handle);
    let ports = g.nodes.iter().map(|n| ops::port(g, n));
    let plan_static = plan_static::emit(g, plan);
    let par = plan.stages.iter().map(|s| {
        let head = g.node(s.head);
        let declared = match plan.declared[s.head].literal() {
            Some(p) => quote!(::core::option::Option::Some(#p)),
            None => quote!(::core::option::Option::None),
        };
        if head.is_source() {
            let sv = head.spec_var();
            quote!(#sv.parallelism(__env, #declared))
        } else {
            quote!(::flow::__private::parallelism(__env, #declared))
        }
    });
    let bounded = g.nodes.iter().filter(|n| n.is_source()).map(|n| {
        let sv = n.spec_var();
        quote!(&& #sv.is_bounded())
    });
    let event_time = g.nodes.iter().filter(|n| n.is_source()).map(|n| {
        let sv = n.spec_var();
        quote!(|| #sv.has_watermarks())
    });
    let fused = if plan.fusable {
        fused_tasks(g, plan)
    } else {
        quote!()
    };
    let staged = staged_tasks(g, plan);
    quote! {
        #(#handles)*
        {
            let __env: &::flow::StreamEnv = &(#env);
            #(#ports)*
            #plan_static
            let __par: ::std::vec::Vec<usize> = ::std::vec![#(#par),*];
            let __bounded = true #(#bounded)*;
            let __event_time = false #(#event_time)*;
            let mut __job = ::flow::__private::JobBuilder::new(&__PLAN, __par, __bounded);
            if __job.fused() {
                #fused
            } else {
                #staged
            }
            __env.register(__job.build());
        }
    }
}

/// What a stage's chain needs moved into its task.
#[derive(Default)]
struct Captures {
    specs: BTreeSet<usize>,
    /// Exchange edges (consumer node, input index) whose senders the task owns.
    senders: Vec<(usize, usize)>,
}

struct ChainGen<'a> {
    g: &'a Graph,
    plan: &'a Plan,
    fused: bool,
    caps: Captures,
}

/// `tokens` with every span set to `span`, so that rustc's errors about them land on the user's
/// token that `span` comes from.
pub fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                tt = proc_macro2::TokenTree::Group(ng);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

fn edge_var(c: usize, k: usize) -> Ident {
    format_ident!("__e{}_{}", c, k)
}
fn sender_var(c: usize, k: usize) -> Ident {
    format_ident!("__snd{}_{}", c, k)
}

impl ChainGen<'_> {
    /// The collector receiving node `n`'s output rows.
    fn downstream(&mut self, n: usize) -> TokenStream {
        let node = self.g.node(n);
        let mut exprs = Vec::new();
        for &c in &node.outputs {
            let child = self.g.node(c);
            // Side outputs are fed by the operator's side channel, not its main output.
            if child.spec.kind == OpKind::SideOutput {
                continue;
            }
            for (k, _) in child.inputs.iter().enumerate().filter(|(_, &i)| i == n) {
                let local = self.fused || !self.plan.is_boundary(c);
                exprs.push(if local {
                    self.build(c)
                } else {
                    self.exchange(n, c, k)
                });
            }
        }
        let mut it = exprs.into_iter().rev();
        let last = it
            .next()
            .unwrap_or_else(|| quote!(::flow::__private::Discard));
        it.fold(last, |acc, e| quote!(::flow::__private::Tee::new(#e, #acc)))
    }

    /// The collector receiving node `c`'s input rows.
    fn build(&mut self, c: usize) -> TokenStream {
        let node = self.g.node(c);
        // Partitionings, windows and sources do nothing per row: nothing of theirs is moved.
        if !matches!(
            node.spec.kind,
            OpKind::KeyBy
                | OpKind::Rebalance
                | OpKind::Union
                | OpKind::Source
                | OpKind::Window
                | OpKind::WindowAll
                | OpKind::CountWindow
                | OpKind::SideOutput
                | OpKind::Connect
                | OpKind::IntervalJoin
                | OpKind::WindowJoin
                | OpKind::Broadcast
        ) {
            self.caps.specs.insert(c);
        }
        if let Some(&i) = node.inputs.first() {
            let input = self.g.node(i);
            if input.spec.keyed_output && node.spec.kind != OpKind::KeyBy {
                self.caps.specs.insert(i);
            }
            // An interval join needs both inputs' key selectors.
            if matches!(
                input.spec.kind,
                OpKind::IntervalJoin | OpKind::WindowJoin | OpKind::Connect
            ) {
                for &k in &input.inputs {
                    if self.g.node(k).spec.keyed_output {
                        self.caps.specs.insert(k);
                    }
                }
                if input.spec.kind == OpKind::WindowJoin {
                    self.caps.specs.insert(i);
                }
            }
            // A window function needs the window's spec and its key selector.
            if input.is_window() {
                self.caps.specs.insert(i);
                if let Some(&k) = input.inputs.first() {
                    if self.g.node(k).spec.keyed_output {
                        self.caps.specs.insert(k);
                    }
                }
            }
        }
        // A keyed process function with side outputs read after it.
        let keyed_process = node.spec.kind == OpKind::Process
            && self.g.window_of(node).is_none()
            && self.g.keyed_input(node);
        if keyed_process {
            let next = self.downstream(c);
            let sides: Vec<usize> = node
                .outputs
                .iter()
                .copied()
                .filter(|&s| self.g.node(s).spec.kind == OpKind::SideOutput)
                .collect();
            let side = sides
                .into_iter()
                .map(|s| (self.g.node(s).spec_var(), self.side_output(c, s)))
                .collect::<Vec<_>>();
            let side = ops::side_outputs(side);
            return ops::process::chain_with_side(self.g, node, next, side);
        }
        if let Some(w) = self.g.window_of(node) {
            let next = self.downstream(c);
            let late = node
                .outputs
                .iter()
                .find(|&&s| self.g.node(s).spec.kind == OpKind::SideOutput)
                .map(|&s| (self.g.node(s).spec_var(), self.side_output(c, s)));
            return ops::window::chain(self.g, w, node, next, late);
        }
        let next = if node.spec.is_sink {
            quote!()
        } else {
            self.downstream(c)
        };
        ops::chain(self.g, node, next)
    }

    /// The collector reading side output `s` of node `c`.
    fn side_output(&mut self, c: usize, s: usize) -> TokenStream {
        self.caps.specs.insert(s);
        if self.fused || !self.plan.is_boundary(s) {
            self.build(s)
        } else {
            self.exchange(c, s, 0)
        }
    }

    /// The exchange sending node `n`'s rows over edge `k` into node `c`'s stage.
    fn exchange(&mut self, n: usize, c: usize, k: usize) -> TokenStream {
        let snd = sender_var(c, k);
        self.caps.senders.push((c, k));
        let name = self.g.node(n).label();
        if self.g.node(n).spec.kind == OpKind::Broadcast {
            return quote!(::flow::__private::BroadcastExchange::new(#snd, #name, __event_time));
        }
        let partition = if self.plan.edge[c] == Edge::Hash {
            // Into a two-input operator the key is the sending `key_by`'s; otherwise the
            // receiving `key_by`'s.
            let key_node = if self.g.node(c).spec.kind == OpKind::KeyBy {
                c
            } else {
                n
            };
            self.caps.specs.insert(key_node);
            let kv = self.g.node(key_node).spec_var();
            quote!(::flow::__private::ByKey(::std::clone::Clone::clone(&#kv)))
        } else {
            quote!(::flow::__private::RoundRobin::starting_at(
                __ctx.subtask_index()
            ))
        };
        quote!(::flow::__private::Exchange::new(#partition, #snd, #name, __event_time))
    }

    fn clones(&self) -> TokenStream {
        let specs = self.caps.specs.iter().map(|&s| {
            let v = self.g.node(s).spec_var();
            quote!(let #v = ::std::clone::Clone::clone(&#v);)
        });
        let senders = self.caps.senders.iter().map(|&(c, k)| {
            let (e, s) = (edge_var(c, k), sender_var(c, k));
            quote!(let #s = ::flow::__private::take(&mut #e.senders, __i);)
        });
        quote!(#(#specs)* #(#senders)*)
    }
}

fn source_task(g: &Graph, plan: &Plan, head: &Node, fused: bool) -> TokenStream {
    let mut cg = ChainGen {
        g,
        plan,
        fused,
        caps: Captures::default(),
    };
    let chain = cg.downstream(head.id);
    let clones = cg.clones();
    let (sv, id, stage) = (head.spec_var(), head.id as u32, plan.stage_of[head.id]);
    // `.timestamps(f)` right after the source is run by the source loop itself.
    let assigner = match head.outputs.first().map(|&c| g.node(c)) {
        Some(t) if t.spec.kind == OpKind::Timestamps => {
            let v = t.spec_var();
            quote!(::std::clone::Clone::clone(&#v))
        }
        _ => quote!(::flow::__private::SourceTimestamps),
    };
    quote! {
        let __wm = #sv.watermarks();
        let __p = if __job.fused() { 1 } else { __job.parallelism(#stage) };
        let __readers = #sv.readers(__p, &mut __job);
        for (__i, __reader) in __readers.into_iter().enumerate() {
            let __wm = ::std::clone::Clone::clone(&__wm);
            #clones
            __job.task(#stage, __i, move |__ctx: &::flow::__private::RuntimeContext| -> ::flow::Result<::flow::__private::TaskMetrics> {
                let __chain = #chain;
                ::flow::__private::run_source(__ctx, __reader, __chain, #id, &__wm, #assigner)
            });
        }
    }
}

fn fused_tasks(g: &Graph, plan: &Plan) -> TokenStream {
    let tasks = g.nodes.iter().filter(|n| n.is_source()).map(|n| {
        let t = source_task(g, plan, n, true);
        quote!({ #t })
    });
    quote!(#(#tasks)*)
}

fn staged_tasks(g: &Graph, plan: &Plan) -> TokenStream {
    // Channels of every edge that crosses stages, typed by the producing port.
    let mut channels = Vec::new();
    for s in &plan.stages {
        let head = g.node(s.head);
        for (k, &p) in head.inputs.iter().enumerate() {
            let e = edge_var(head.id, k);
            // A side output's channel carries the side output's rows, not its operator's.
            let port = if head.spec.kind == OpKind::SideOutput {
                let t = head.port_var();
                quote!(#t)
            } else {
                g.port_of(p, false)
            };
            let (up, down) = (plan.stage_of[p], s.id);
            // All-to-all for `rebalance` and broadcast inputs; one-to-one where a parallelism
            // change or a merge turns out equal at run time.
            let pointwise = plan.edge[head.id] == crate::plan::Edge::Rebalance
                && head.spec.kind != OpKind::Rebalance
                && g.node(p).spec.kind != OpKind::Broadcast;
            channels.push(quote! {
                let mut #e = #port.channels(__job.parallelism(#up), __job.parallelism(#down), #pointwise);
            });
        }
    }
    let stages = plan.stages.iter().map(|s| {
        let head = g.node(s.head);
        if head.is_source() {
            let t = source_task(g, plan, head, false);
            return quote!({ #t });
        }
        let mut cg = ChainGen { g, plan, fused: false, caps: Captures::default() };
        let chain = cg.build(head.id);
        let clones = cg.clones();
        let stage = s.id;
        // After `connect`: two gates, one per input, into the two-input operator.
        if matches!(
            head.spec.kind,
            OpKind::Connect | OpKind::IntervalJoin | OpKind::WindowJoin
        ) {
            let (e0, e1) = (edge_var(head.id, 0), edge_var(head.id, 1));
            return quote! {
                for __i in 0..__job.parallelism(#stage) {
                    let __gate0 = ::flow::__private::InputGate::new(::flow::__private::take(&mut #e0.receivers, __i));
                    let __gate1 = ::flow::__private::InputGate::new(::flow::__private::take(&mut #e1.receivers, __i));
                    #clones
                    __job.task(#stage, __i, move |__ctx: &::flow::__private::RuntimeContext| -> ::flow::Result<::flow::__private::TaskMetrics> {
                        let __chain = #chain;
                        ::flow::__private::run_two_gates(__ctx, __gate0, __gate1, __chain)
                    });
                }
            };
        }
        let inputs = (0..head.inputs.len()).map(|k| {
            let e = edge_var(head.id, k);
            let receivers = quote!(::flow::__private::take(&mut #e.receivers, __i));
            if head.spec.kind == OpKind::Union && k > 0 {
                let proof = ops::union::input_var(head, k);
                quote!(__inputs.extend(#proof.cast(#receivers));)
            } else {
                quote!(__inputs.extend(#receivers);)
            }
        });
        quote! {
            for __i in 0..__job.parallelism(#stage) {
                let mut __inputs = ::std::vec::Vec::new();
                #(#inputs)*
                let __gate = ::flow::__private::InputGate::new(__inputs);
                #clones
                __job.task(#stage, __i, move |__ctx: &::flow::__private::RuntimeContext| -> ::flow::Result<::flow::__private::TaskMetrics> {
                    let __chain = #chain;
                    ::flow::__private::run_gate(__ctx, __gate, __chain)
                });
            }
        }
    });
    quote!(#(#channels)* #(#stages)*)
}
