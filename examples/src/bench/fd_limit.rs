//! Raises this process's open-file limit (`RLIMIT_NOFILE`) from its soft value to its hard one, so
//! thousands of idle connections fit.

/// The kernel refused to raise the soft open-file limit.
#[derive(Debug, thiserror::Error)]
#[error("setrlimit(RLIMIT_NOFILE) refused: {0}")]
pub struct FdLimitError(#[source] rustix::io::Errno);

/// The soft limit after raising it as far as the hard limit allows.
pub fn raise_nofile_to_hard() -> Result<u64, FdLimitError> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: current.maximum,
        maximum: current.maximum,
    };
    if raised.current != current.current {
        setrlimit(Resource::Nofile, raised).map_err(FdLimitError)?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_gives_at_least_the_old_soft_limit() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let after = super::raise_nofile_to_hard();
        assert!(matches!((after, before), (Ok(a), Some(b)) if a >= b) || before.is_none());
    }
}
