//! What can stop training, evaluation or a search: one enum for the whole `train` layer.

use std::path::PathBuf;

use crate::data::DataError;
use crate::ir::ChannelsError;
use crate::runtime::checkpoint::CheckpointError;
use crate::runtime::RuntimeError;

/// A training option out of its range: `field` is its name in `meta.json`'s
/// `state.options` (Joslim's inside its scheme), and the flag is the same with dashes.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct OptionError {
    pub field: &'static str,
    pub problem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Write(#[from] slimc_lang::WriteError),
    #[error(transparent)]
    Config(#[from] super::configs::ConfigError),
    #[error("training option {0}")]
    Option(OptionError),
    #[error(transparent)]
    Memory(#[from] super::memory::TooLarge),
    /// The images are not square.
    #[error("{data} images are {height}×{width}; slimc's networks take square inputs")]
    NotSquare { data: String, height: usize, width: usize },
    /// The classifier's outputs are not the data set's classes.
    #[error("{network} has {outputs} outputs but {data} has {classes} classes")]
    Classes { network: String, outputs: usize, data: String, classes: usize },
    /// A new run's directory already holds a run's state.
    #[error("{} already holds a run", .0.display())]
    RunExists(PathBuf),
    #[error(transparent)]
    Parallel(#[from] super::parallel::ParallelError),
    /// Weights given by name (`--init`) that do not fit the network.
    #[error(transparent)]
    Weights(#[from] crate::export::named::WeightsError),
    /// `--teacher` weights without BN running statistics to evaluate with.
    #[error(
        "{}: a teacher needs every BN's running_mean and running_var (a state_dict, an import's or a full-width export's weights hold them)",
        path.display()
    )]
    TeacherStats { path: PathBuf },
    /// `--normalize` with a number of values that is neither 1 nor the images' channels.
    #[error(
        "--normalize gives {got} values; the images have {channels} channels (give one value, or one per channel)"
    )]
    Normalize { channels: usize, got: usize },
    #[error("joslim: {0}")]
    Joslim(#[from] super::joslim::JoslimError),
    /// The loss became NaN or infinite; the last checkpoint is kept.
    #[error(
        "the loss became {loss} at step {step} (epoch {}); training stopped, the last good checkpoint is kept",
        epoch + 1
    )]
    Diverged { step: usize, epoch: usize, loss: f64 },
    /// Weights or BN statistics became NaN or infinite; nothing was written.
    #[error(
        "{what} became NaN or infinite by step {step}: training diverged (try a lower learning rate); \
         the last good checkpoint is kept"
    )]
    NonFinite { step: usize, what: String },
    /// Not one full batch per epoch.
    #[error("a batch of {batch} is larger than the {images} training images")]
    BatchTooLarge { batch: usize, images: usize },
    #[error("{} is neither a run directory nor a checkpoint (no meta.json)", .0.display())]
    NotARun(PathBuf),
    /// A stored search (or configuration file) that does not fit the network.
    #[error("{}: {what}", path.display())]
    SearchFile { path: PathBuf, what: SearchFileError },
    /// The data set's images do not have the network's input shape.
    #[error("{data} images are {shape:?}, the network takes {want:?}")]
    DataShape { data: String, shape: [usize; 3], want: [usize; 3] },
    /// Non-uniform configurations of a run with one BN per width switch.
    #[error("non-uniform configurations need shared BN; this run has one BN per width switch")]
    SwitchableBn,
    /// A baseline that was not trained at one fixed width.
    #[error("{} was not trained at one fixed width", .0.display())]
    NotFixed(PathBuf),
    /// AutoSlim search needs a network trained at every width with shared BN.
    #[error("search needs a network trained with the US scheme (shared BN, every width)")]
    NotUniversal,
    /// Search and Joslim need validation images to rank configurations.
    #[error("the run holds out no validation images; search and joslim need some")]
    NoValidation,
    #[error("cannot encode the state as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The backend returned logits that cannot be read as f32.
    #[error("cannot read the network's output: {0}")]
    Output(String),
}

/// What is wrong with a stored search result, entry by entry.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SearchFileError {
    /// `complete` without a single step of the greedy path: not a search slimc wrote.
    #[error("is marked complete but holds no search path")]
    CompleteWithoutPath,
    #[error("not a `slimc search` result: {0}")]
    NotASearch(String),
    /// Written by a slimc with a newer format.
    #[error(transparent)]
    Format(#[from] crate::format::FormatError),
    #[error("searched on network `{found}`, not `{expected}`")]
    OtherNetwork { expected: String, found: String },
    /// A per-dimension list of the options (steps, minimum) of the wrong length.
    #[error("options.{field} has {got} entries, the network has {expected} search dimensions")]
    OptionLength { field: &'static str, expected: usize, got: usize },
    #[error("options.steps[{dim}] is 0; every step removes at least one channel")]
    ZeroStep { dim: usize },
    /// An entry's channels are not a configuration of the network.
    #[error("{entry}.channels: {error}")]
    Channels { entry: String, error: ChannelsError },
    /// An entry's MACs or parameters are not what its channels cost.
    #[error("{entry}.{field} is {stored}, but its channels give {actual}")]
    Cost { entry: String, field: &'static str, stored: u64, actual: u64 },
    #[error("the path is empty but {0} configurations are recorded as found")]
    FoundWithoutPath(usize),
    /// The search was made with other options than the ones asked for now.
    #[error("holds a search with other options")]
    OtherOptions,
    /// A line of a configuration file that is not one multiplier per dimension.
    #[error("line {line}: expected {dims} comma-separated multipliers in (0, 1]")]
    ConfigLine { line: usize, dims: usize },
    #[error("holds no configuration")]
    Empty,
    #[error("not a `slimc eval --pareto` result: {0}")]
    NotAPareto(String),
}
