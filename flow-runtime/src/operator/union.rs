//! `union`: merges streams of the same row type. It has no per-row work: the stage after it
//! reads every input's channels through one input gate, whose watermark is the minimum over
//! all of them.
