//! Building an ONNX Runtime session on the requested execution provider.

use std::str::FromStr;

use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use serde::Serialize;

use super::EngineError;
use super::weights::Weights;
use crate::runtime::Runtime;

/// The device a user asks for: `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// CUDA when it registers, the CPU otherwise.
    #[default]
    Auto,
    Cpu,
    /// CUDA or an error; the GPU ordinal.
    Cuda(i32),
}

impl FromStr for DeviceRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The device a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Cpu,
    Cuda(i32),
    /// An inference server (the remote backend).
    Server,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Server => f.write_str("server"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub device: DeviceRequest,
    /// Threads for one operator; `None` lets ONNX Runtime pick (one per core).
    pub intra_threads: Option<usize>,
    /// Copy keys and values every step even where the graph could update
    /// them in place (benchmarks compare the two).
    pub copy_kv: bool,
}

/// Intra-op threads, at most one per core this process may use: more only
/// contend for the cores, and each costs ONNX Runtime a stack and buffers
/// (`--threads 100000` would grow memory until the process is killed).
pub fn bounded_threads(requested: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if requested > cores {
        tracing::warn!(
            requested,
            cores,
            "more threads than cores; using one per core"
        );
        cores
    } else {
        requested.max(1)
    }
}

/// Creates the session and says which device it got and, for `auto` on a
/// machine without a usable GPU, why CUDA was not used.
pub(crate) fn create(
    runtime: &Runtime,
    weights: &Weights,
    options: &SessionOptions,
) -> Result<(Session, Device, Option<String>), EngineError> {
    let threads = options
        .intra_threads
        .filter(|&n| n > 0)
        .map(bounded_threads);
    let builder = || -> Result<SessionBuilder, EngineError> {
        let mut b = Session::builder(&runtime.env)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ort::Error::from)?;
        for (name, data) in &weights.external {
            b = b
                .with_external_initializer_file_in_memory(name, data.clone())
                .map_err(ort::Error::from)?;
        }
        if let Some(n) = threads {
            b = b.with_intra_threads(n).map_err(ort::Error::from)?;
        }
        Ok(b)
    };
    let cuda_ordinal = match options.device {
        DeviceRequest::Cpu => None,
        DeviceRequest::Auto => Some(0),
        DeviceRequest::Cuda(n) => Some(n),
    };
    let mut cuda_error = None;
    if let Some(ordinal) = cuda_ordinal {
        match try_cuda(builder()?, ordinal)
            .and_then(|mut b| Ok(b.commit_from_memory(&weights.graph)?))
        {
            Ok(session) => return Ok((session, Device::Cuda(ordinal), None)),
            Err(e) if options.device == DeviceRequest::Auto => {
                let reason = match e {
                    EngineError::CudaUnavailable(reason) => reason,
                    other => other.to_string(),
                };
                tracing::info!("CUDA not used: {reason}");
                cuda_error = Some(reason);
            }
            Err(e) => return Err(EngineError::CudaUnavailable(e.to_string())),
        }
    }
    let session = builder()?.commit_from_memory(&weights.graph)?;
    Ok((session, Device::Cpu, cuda_error))
}

/// Registers CUDA explicitly so that a failure is an error rather than
/// `ort`'s silent fallback to the CPU.
#[cfg(feature = "cuda")]
fn try_cuda(mut builder: SessionBuilder, ordinal: i32) -> Result<SessionBuilder, EngineError> {
    use ort::ep::ExecutionProvider;
    crate::runtime::preload_cuda_libraries();
    if !ort::ep::CUDA::is_available().unwrap_or(false) {
        return Err(EngineError::CudaUnavailable(
            "this ONNX Runtime library has no CUDA execution provider; install onnxruntime-gpu \
             (scripts/install-onnxruntime.sh --gpu)"
                .into(),
        ));
    }
    ort::ep::CUDA::default()
        .with_device_id(ordinal)
        .register(&mut builder)
        .map_err(|e| EngineError::CudaUnavailable(e.to_string()))?;
    Ok(builder)
}

#[cfg(not(feature = "cuda"))]
fn try_cuda(_: SessionBuilder, _: i32) -> Result<SessionBuilder, EngineError> {
    Err(EngineError::CudaUnavailable(
        "nib was built without the `cuda` feature".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_requests() {
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceRequest::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceRequest::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceRequest::Cuda(3)));
        assert!("cuda:-1".parse::<DeviceRequest>().is_err());
        assert!("tpu".parse::<DeviceRequest>().is_err());
    }
}
