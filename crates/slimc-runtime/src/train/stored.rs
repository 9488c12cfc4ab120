//! The run state to and from its stored form ([`crate::format::run`]). Every conversion
//! takes its source apart field by field, so a field added to either side is a compile
//! error here until it is stored (and the format number considered).

use super::joslim::{JoslimOptions, JoslimState, Member, Objective};
use super::run::{EpochMetrics, RunState, Schedule, TrainOptions};
use super::scheme::Scheme;
use super::Sampling;
use crate::data::{Augment, DataSpec, Inception, Normalize};
use crate::format::run as doc;

impl From<&RunState> for doc::State {
    fn from(s: &RunState) -> doc::State {
        let RunState { options, normalize, epoch, batch, step, history, joslim } = s;
        doc::State {
            options: options.into(),
            normalize: doc::Normalize { mean: normalize.mean.clone(), std: normalize.std.clone() },
            epoch: *epoch,
            batch: *batch,
            step: *step,
            history: history.iter().map(doc::Metrics::from).collect(),
            joslim: joslim.as_ref().map(|JoslimState { pool, updates }| doc::JoslimState {
                pool: pool
                    .iter()
                    .map(|Member { wm, cost, loss, born }| doc::Member {
                        wm: wm.clone(),
                        cost: *cost,
                        loss: *loss,
                        born: *born,
                    })
                    .collect(),
                updates: *updates,
            }),
        }
    }
}

impl From<doc::State> for RunState {
    fn from(s: doc::State) -> RunState {
        let doc::State { options, normalize, epoch, batch, step, history, joslim } = s;
        RunState {
            options: options.into(),
            normalize: Normalize { mean: normalize.mean, std: normalize.std },
            epoch,
            batch,
            step,
            history: history.into_iter().map(EpochMetrics::from).collect(),
            joslim: joslim.map(|doc::JoslimState { pool, updates }| JoslimState {
                pool: pool
                    .into_iter()
                    .map(|doc::Member { wm, cost, loss, born }| Member { wm, cost, loss, born })
                    .collect(),
                updates,
            }),
        }
    }
}

impl From<&TrainOptions> for doc::Options {
    fn from(o: &TrainOptions) -> doc::Options {
        let TrainOptions {
            scheme,
            sampling,
            min_width,
            random,
            epochs,
            batch,
            lr,
            momentum,
            weight_decay,
            schedule,
            warmup,
            label_smoothing,
            seed,
            max_steps,
            val,
            calibrate,
            data,
            augment,
            eval_resize,
            teacher,
        } = o;
        doc::Options {
            scheme: match scheme {
                Scheme::Us => doc::Scheme::Us,
                Scheme::S(ws) => doc::Scheme::S(ws.clone()),
                Scheme::Fixed(w) => doc::Scheme::Fixed(*w),
                Scheme::Joslim(JoslimOptions { prior, tau, per_update, pool, objective, beta }) => {
                    doc::Scheme::Joslim(doc::Joslim {
                        prior: *prior,
                        tau: *tau,
                        per_update: *per_update,
                        pool: *pool,
                        objective: match objective {
                            Objective::Macs => doc::Objective::Macs,
                            Objective::Params => doc::Objective::Params,
                            Objective::Memory => doc::Objective::Memory,
                            Objective::Latency => doc::Objective::Latency,
                        },
                        beta: *beta,
                    })
                }
            },
            sampling: match sampling {
                Sampling::Uniform => doc::Sampling::Uniform,
                Sampling::PerDim => doc::Sampling::PerDim,
            },
            min_width: *min_width,
            random: *random,
            epochs: *epochs,
            batch: *batch,
            lr: *lr,
            momentum: *momentum,
            weight_decay: *weight_decay,
            schedule: match schedule {
                Schedule::Cosine => doc::Schedule::Cosine,
                Schedule::Linear => doc::Schedule::Linear,
            },
            warmup: *warmup,
            label_smoothing: *label_smoothing,
            seed: *seed,
            max_steps: *max_steps,
            val: *val,
            calibrate: *calibrate,
            data: match data.clone() {
                DataSpec::FashionMnist(d) => doc::Data::FashionMnist(d),
                DataSpec::Mnist(d) => doc::Data::Mnist(d),
                DataSpec::Cifar10(d) => doc::Data::Cifar10(d),
                DataSpec::Cifar100(d) => doc::Data::Cifar100(d),
                DataSpec::ImageFolder(d) => doc::Data::ImageFolder(d),
                DataSpec::WebDataset(d) => doc::Data::WebDataset(d),
            },
            augment: augment.map(|a| match a {
                Augment::Pad { pad, flip } => doc::Augment::Pad { pad, flip },
                Augment::Inception(Inception { scale, ratio, jitter, lighting }) => {
                    doc::Augment::Inception { scale, ratio, jitter, lighting }
                }
            }),
            eval_resize: *eval_resize,
            teacher: teacher.clone(),
        }
    }
}

impl From<doc::Options> for TrainOptions {
    fn from(o: doc::Options) -> TrainOptions {
        let doc::Options {
            scheme,
            sampling,
            min_width,
            random,
            epochs,
            batch,
            lr,
            momentum,
            weight_decay,
            schedule,
            warmup,
            label_smoothing,
            seed,
            max_steps,
            val,
            calibrate,
            data,
            augment,
            eval_resize,
            teacher,
        } = o;
        TrainOptions {
            scheme: match scheme {
                doc::Scheme::Us => Scheme::Us,
                doc::Scheme::S(ws) => Scheme::S(ws),
                doc::Scheme::Fixed(w) => Scheme::Fixed(w),
                doc::Scheme::Joslim(doc::Joslim { prior, tau, per_update, pool, objective, beta }) => {
                    Scheme::Joslim(JoslimOptions {
                        prior,
                        tau,
                        per_update,
                        pool,
                        objective: match objective {
                            doc::Objective::Macs => Objective::Macs,
                            doc::Objective::Params => Objective::Params,
                            doc::Objective::Memory => Objective::Memory,
                            doc::Objective::Latency => Objective::Latency,
                        },
                        beta,
                    })
                }
            },
            sampling: match sampling {
                doc::Sampling::Uniform => Sampling::Uniform,
                doc::Sampling::PerDim => Sampling::PerDim,
            },
            min_width,
            random,
            epochs,
            batch,
            lr,
            momentum,
            weight_decay,
            schedule: match schedule {
                doc::Schedule::Cosine => Schedule::Cosine,
                doc::Schedule::Linear => Schedule::Linear,
            },
            warmup,
            label_smoothing,
            seed,
            max_steps,
            val,
            calibrate,
            data: match data {
                doc::Data::FashionMnist(d) => DataSpec::FashionMnist(d),
                doc::Data::Mnist(d) => DataSpec::Mnist(d),
                doc::Data::Cifar10(d) => DataSpec::Cifar10(d),
                doc::Data::Cifar100(d) => DataSpec::Cifar100(d),
                doc::Data::ImageFolder(d) => DataSpec::ImageFolder(d),
                doc::Data::WebDataset(d) => DataSpec::WebDataset(d),
            },
            augment: augment.map(|a| match a {
                doc::Augment::Pad { pad, flip } => Augment::Pad { pad, flip },
                doc::Augment::Inception { scale, ratio, jitter, lighting } => {
                    Augment::Inception(Inception { scale, ratio, jitter, lighting })
                }
            }),
            eval_resize,
            teacher,
        }
    }
}

impl From<&EpochMetrics> for doc::Metrics {
    fn from(m: &EpochMetrics) -> doc::Metrics {
        let EpochMetrics {
            epoch,
            step,
            complete,
            train_loss,
            lr,
            min_width,
            max_width,
            val_acc_min,
            val_acc_max,
            img_per_s,
            seconds,
            search_seconds,
        } = *m;
        doc::Metrics {
            epoch,
            step,
            complete,
            train_loss,
            lr,
            min_width,
            max_width,
            val_acc_min,
            val_acc_max,
            img_per_s,
            seconds,
            search_seconds,
        }
    }
}

impl From<doc::Metrics> for EpochMetrics {
    fn from(m: doc::Metrics) -> EpochMetrics {
        let doc::Metrics {
            epoch,
            step,
            complete,
            train_loss,
            lr,
            min_width,
            max_width,
            val_acc_min,
            val_acc_max,
            img_per_s,
            seconds,
            search_seconds,
        } = m;
        EpochMetrics {
            epoch,
            step,
            complete,
            train_loss,
            lr,
            min_width,
            max_width,
            val_acc_min,
            val_acc_max,
            img_per_s,
            seconds,
            search_seconds,
        }
    }
}
