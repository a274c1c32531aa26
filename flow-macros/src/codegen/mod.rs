//! Code generation for `flow!`: the typed walk over the graph, the static plan, and one task
//! per stage subtask whose chain is the stage's operators nested into one generic type.
//!
//! Generated code names only `::flow::__private` (and `::flow` re-exports). What each
//! operator emits comes from its spec (`ops/`); this module only walks the graph.

mod plan_static;

use crate::graph::{Graph, Node};
use crate::lock::Lock;
use crate::ops::{self, Role};
use crate::parse::FlowInput;
use crate::plan::{Edge, Plan};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use syn::Ident;

pub fn expand(input: &FlowInput, g: &Graph, plan: &Plan) -> TokenStream {
    let env = &input.env;
    let handles = g.nodes.iter().filter_map(ops::sink::collect_handle);
    let ports = g.nodes.iter().map(|n| (n.spec.port)(g, n));
    let lock = Lock::read();
    let plan_static = plan_static::emit(g, plan, &lock);
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
    let sources = || g.nodes.iter().filter(|n| n.is_source()).map(Node::spec_var);
    let sinks = (g.nodes.iter())
        .filter(|n| n.spec.role == Role::Sink)
        .map(Node::spec_var);
    let bounded = sources().map(|sv| quote!(&& #sv.is_bounded()));
    let event_time = sources().map(|sv| quote!(|| #sv.has_watermarks()));
    let fused = if plan.fusable {
        fused_tasks(g, plan, &lock)
    } else {
        quote!()
    };
    let staged = staged_tasks(g, plan, &lock);
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
            __job.join_instances(__env, ::flow::__private::TRANSPORT);
            #(#sinks.check_job(&mut __job);)*
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
    /// Nodes whose value variable the chain reads.
    specs: BTreeSet<usize>,
    /// Exchange edges (consumer node, input index) whose senders the task owns.
    senders: Vec<(usize, usize)>,
    /// Fused `key_by` edges (consumer node, input index) whose receivers the task owns too.
    receivers: Vec<(usize, usize)>,
}

struct ChainGen<'a> {
    g: &'a Graph,
    plan: &'a Plan,
    lock: &'a Lock,
    /// One task per source subtask runs every stage.
    fused: bool,
    /// Fused above parallelism 1: a `key_by` between stages is a `FusedExchange` (at 1 it is
    /// nothing).
    keyed: bool,
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
fn receiver_var(c: usize, k: usize) -> Ident {
    format_ident!("__rcv{}_{}", c, k)
}

impl ChainGen<'_> {
    /// The collector receiving node `n`'s output rows: its consumers' chains in this stage, or
    /// the exchanges into theirs (a fan-out to several is a `Tee`).
    fn downstream(&mut self, n: usize) -> TokenStream {
        let node = self.g.node(n);
        let mut exprs = Vec::new();
        for &c in &node.outputs {
            // Side outputs are fed by the operator's side channel, not its main output.
            if self.g.node(c).spec.role == Role::SideOutput {
                continue;
            }
            for k in self.input_slots(n, c) {
                exprs.push(self.input_link(n, c, k));
            }
        }
        let mut it = exprs.into_iter().rev();
        let last = it
            .next()
            .unwrap_or_else(|| quote!(::flow::__private::Discard));
        it.fold(last, |acc, e| quote!(::flow::__private::Tee::new(#e, #acc)))
    }

    /// The input slots of `c` that read `n`.
    fn input_slots(&self, n: usize, c: usize) -> Vec<usize> {
        let inputs = &self.g.node(c).inputs;
        (0..inputs.len()).filter(|&k| inputs[k] == n).collect()
    }

    /// The collector of `n`'s rows into input `k` of `c`: `c`'s chain when it is in this
    /// stage, the exchange into its stage otherwise.
    fn input_link(&mut self, n: usize, c: usize, k: usize) -> TokenStream {
        if !self.plan.is_boundary(c, k) {
            self.build(c)
        } else if !self.fused {
            self.exchange(n, c, k)
        } else if self.keyed && self.plan.edges[c][k] == Edge::Hash {
            self.fused_exchange(n, c, k)
        } else {
            // Fused at parallelism 1, or across a `key_by` above (`JobBuilder::fused`).
            self.build(c)
        }
    }

    /// The collector receiving node `c`'s input rows.
    fn build(&mut self, c: usize) -> TokenStream {
        let node = self.g.node(c);
        match node.spec.role {
            Role::Operator | Role::Sink => {}
            // Sources, timestamps, partitionings, merges and side outputs do nothing per row.
            _ => return self.downstream(c),
        }
        self.caps.specs.insert(c);
        for &i in &node.inputs {
            if self.g.node(i).spec.role == Role::Partition(ops::Exchange::Hash) {
                // The key selector of a keyed operator.
                self.caps.specs.insert(i);
            }
        }
        let next = if node.spec.role == Role::Sink {
            quote!(::flow::__private::Discard)
        } else {
            self.downstream(c)
        };
        let sides: Vec<usize> = self.g.side_output_readers(node).collect();
        let sides = sides
            .into_iter()
            .map(|s| {
                self.caps.specs.insert(s);
                let tag = self.g.node(s).spec_var();
                (tag, self.input_link(c, s, 0))
            })
            .collect();
        let link = ops::chained(self.g, node, next, ops::side_outputs(sides));
        self.lock.check(node, link)
    }

    /// The exchange sending node `n`'s rows over input `k` into node `c`'s stage.
    fn exchange(&mut self, n: usize, c: usize, k: usize) -> TokenStream {
        let snd = sender_var(c, k);
        self.caps.senders.push((c, k));
        let name = self.g.node(n).label();
        // Into a `key_by` read only by a `reduce`: rows are reduced per key before they are
        // sent, in batch mode (a combiner), with the key selector and the reduce's function.
        let mut combine = None;
        let partition = match self.plan.edges[c][k] {
            Edge::Broadcast => {
                return quote!(::flow::__private::BroadcastExchange::new(#snd, #name, __event_time))
            }
            Edge::Hash => {
                // Into a `key_by`, its key; into a two-input operator, the key of the `key_by`
                // it absorbed (the sender).
                let key_node = if matches!(self.g.node(c).spec.role, Role::Partition(_)) {
                    c
                } else {
                    n
                };
                self.caps.specs.insert(key_node);
                let kv = self.g.node(key_node).spec_var();
                if let Some(r) = self.reduce_after(c) {
                    self.caps.specs.insert(r);
                    let (fv, reduce) = (self.g.node(r).spec_var(), self.g.node(r).label());
                    combine = Some(quote!(
                        ::std::clone::Clone::clone(&#kv), ::std::clone::Clone::clone(&#fv), #reduce
                    ));
                }
                quote!(::flow::__private::ByKey(::std::clone::Clone::clone(&#kv)))
            }
            _ => quote!(::flow::__private::RoundRobin::starting_at(
                __ctx.subtask_index()
            )),
        };
        let exchange =
            quote!(::flow::__private::Exchange::new(#partition, #snd, #name, __event_time));
        match combine {
            Some(args) => quote!(::flow::__private::Combine::new(#args, #exchange)),
            None => exchange,
        }
    }

    /// The `key_by` of a fused subtask above parallelism 1: node `n`'s rows over input `k`
    /// into node `c`, kept for `c`'s chain in this task when the subtask owns their key, else
    /// sent to the one that does.
    fn fused_exchange(&mut self, n: usize, c: usize, k: usize) -> TokenStream {
        let (snd, rcv) = (sender_var(c, k), receiver_var(c, k));
        self.caps.senders.push((c, k));
        self.caps.receivers.push((c, k));
        let name = self.g.node(n).label();
        // (A multi-input operator is never fused: the key is `c`'s, a `key_by`.)
        self.caps.specs.insert(c);
        let kv = self.g.node(c).spec_var();
        let node = c as u32;
        let local = self.build(c);
        quote!(::flow::__private::FusedExchange::new(
            ::flow::__private::ByKey(::std::clone::Clone::clone(&#kv)),
            #snd, #rcv, __ctx.subtask_index(), #name, #node, __event_time, #local
        ))
    }

    /// The `reduce` that is the only reader of `key_by` node `c`, if it is one.
    fn reduce_after(&self, c: usize) -> Option<usize> {
        let node = self.g.node(c);
        if node.spec.role != Role::Partition(ops::Exchange::Hash) {
            return None;
        }
        match node.outputs[..] {
            [r] if self.g.node(r).spec.name == "reduce" && self.g.node(r).inputs == [c] => Some(r),
            _ => None,
        }
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
        let receivers = self.caps.receivers.iter().map(|&(c, k)| {
            let (e, r) = (edge_var(c, k), receiver_var(c, k));
            quote!(let #r = ::flow::__private::take(&mut #e.receivers, __i);)
        });
        quote!(#(#specs)* #(#senders)* #(#receivers)*)
    }
}

fn source_task(
    g: &Graph,
    plan: &Plan,
    lock: &Lock,
    head: &Node,
    fused: bool,
    keyed: bool,
) -> TokenStream {
    let mut cg = ChainGen {
        g,
        plan,
        lock,
        fused,
        keyed,
        caps: Captures::default(),
    };
    let chain = cg.downstream(head.id);
    let clones = cg.clones();
    let (sv, id, stage) = (head.spec_var(), head.id as u32, plan.stage_of[head.id]);
    // `.timestamps(f)` right after the source is run by the source loop itself.
    let assigner = match head.outputs.first().map(|&c| g.node(c)) {
        Some(t) if t.spec.role == Role::Assigner => {
            let v = t.spec_var();
            quote!(::std::clone::Clone::clone(&#v))
        }
        _ => quote!(::flow::__private::SourceTimestamps),
    };
    quote! {
        let __wm = #sv.watermarks();
        let __p = __job.parallelism(#stage);
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

fn fused_tasks(g: &Graph, plan: &Plan, lock: &Lock) -> TokenStream {
    // The channels of every `key_by` between stages, from each subtask to every other (and an
    // idle one to itself), typed by the producing port.
    let mut channels = Vec::new();
    for s in &plan.stages {
        let head = g.node(s.head);
        for k in 0..head.inputs.len() {
            if plan.edges[head.id][k] == Edge::Hash {
                let (e, port, stage) = (edge_var(head.id, k), stage_input_port(g, head, k), s.id);
                channels.push(quote! {
                    let mut #e = #port.channels(__job.parallelism(#stage), __job.parallelism(#stage), false);
                });
            }
        }
    }
    let tasks = |keyed: bool| {
        let tasks = g.nodes.iter().filter(|n| n.is_source()).map(|n| {
            let t = source_task(g, plan, lock, n, true, keyed);
            quote!({ #t })
        });
        quote!(#(#tasks)*)
    };
    let direct = tasks(false);
    if channels.is_empty() {
        // No `key_by` between stages: the chains are the same at any parallelism.
        return direct;
    }
    // At parallelism 1 a `key_by` is nothing (a second type of the chains, so that it costs
    // nothing per row); above, a `FusedExchange`.
    let keyed = tasks(true);
    quote! {
        if __job.parallelism(0) == 1 {
            #direct
        } else {
            #(#channels)*
            #keyed
        }
    }
}

fn staged_tasks(g: &Graph, plan: &Plan, lock: &Lock) -> TokenStream {
    // Channels of every edge that crosses stages, typed by the producing port.
    let mut channels = Vec::new();
    for s in &plan.stages {
        let head = g.node(s.head);
        for (k, &p) in head.inputs.iter().enumerate() {
            let e = edge_var(head.id, k);
            let port = stage_input_port(g, head, k);
            let (up, down) = (plan.stage_of[p], s.id);
            if plan.edges[head.id][k] == Edge::Hash {
                // In an instance group, through a repartition topic: its rows' codec, if any.
                let node = head.id as u32;
                channels.push(quote! {
                    let mut #e = {
                        use ::flow::__private::{NoCodec as _, SerdeRows as _};
                        let __codec = (&&#port.codec_probe()).row_codec();
                        let (__up, __down) = (__job.parallelism(#up), __job.parallelism(#down));
                        #port.hash_channels(&mut __job, #node, #k, __codec, __up, __down)
                    };
                });
                continue;
            }
            let pointwise = plan.edges[head.id][k] == Edge::Rescale;
            channels.push(quote! {
                let mut #e = #port.channels(__job.parallelism(#up), __job.parallelism(#down), #pointwise);
            });
        }
    }
    let stages = plan.stages.iter().map(|s| {
        let head = g.node(s.head);
        if head.is_source() {
            let t = source_task(g, plan, lock, head, false, false);
            return quote!({ #t });
        }
        let mut cg = ChainGen { g, plan, lock, fused: false, keyed: false, caps: Captures::default() };
        let chain = cg.build(head.id);
        let clones = cg.clones();
        let stage = s.id;
        let receivers = |k: usize| {
            let e = edge_var(head.id, k);
            quote!(::flow::__private::take(&mut #e.receivers, __i))
        };
        // The channels carry rows of any type: the gate is typed by the port of its rows.
        let gate_port = |k: usize| stage_input_port(g, head, k);
        // A two-input operator: two gates, one per input.
        if head.spec.role == Role::Operator && head.inputs.len() == 2 {
            let (r0, r1) = (receivers(0), receivers(1));
            let (p0, p1) = (gate_port(0), gate_port(1));
            return quote! {
                for __i in 0..__job.parallelism(#stage) {
                    let __gate0 = #p0.gate(#r0);
                    let __gate1 = #p1.gate(#r1);
                    #clones
                    __job.task(#stage, __i, move |__ctx: &::flow::__private::RuntimeContext| -> ::flow::Result<::flow::__private::TaskMetrics> {
                        let __chain = #chain;
                        ::flow::__private::run_two_gates(__ctx, __gate0, __gate1, __chain)
                    });
                }
            };
        }
        let inputs = (0..head.inputs.len()).map(|k| {
            let r = receivers(k);
            quote!(__inputs.extend(#r);)
        });
        let port = gate_port(0);
        quote! {
            for __i in 0..__job.parallelism(#stage) {
                let mut __inputs = ::std::vec::Vec::new();
                #(#inputs)*
                let __gate = #port.gate(__inputs);
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

/// The port of the rows a stage headed by `head` reads on its input `k`: its input's, or a
/// side output's own (its channel carries the side output's rows, not its operator's).
fn stage_input_port(g: &Graph, head: &Node, k: usize) -> TokenStream {
    if head.spec.role == Role::SideOutput {
        let t = head.port_var();
        quote!(#t)
    } else {
        g.port_of(head.inputs[k])
    }
}
