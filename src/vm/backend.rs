//! The kernel backend in a guest: [`KernelTarget`] says which kernel the
//! `kernel` backend runs on, this machine's or a kernel image booted under
//! qemu, and makes that backend; [`worker_command`] is the recipe that
//! boots a guest with the worker on its serial channel.
//!
//! A guest worker is the same [`KernelBackend`] as a local one, started
//! from another recipe: its `ready` waits for the boot
//! ([`qemu::boot_timeout`]), each answer may take [`REQUEST_TIMEOUT`]
//! (TCG is some 24 times slower than the host), and every error message
//! quotes the end of the guest's console. A guest that panics, hangs,
//! loses its channel or whose worker crashes (`__exit N`) fails the step
//! that hit it (a `kernel-worker` violation, which the `backend-healthy`
//! invariant reports) within those timeouts, and the next request boots a
//! fresh guest.
//!
//! [`uffd_kernel::available`] and [`uffd_kernel::release`] are about this
//! machine: a run's header and its availability check ask the target
//! ([`KernelTarget::note`], [`KernelTarget::available`]) instead, which for
//! a guest read the image's release from its header without booting it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use uffd_kernel::{KernelBackend, WorkerCommand};
use uffd_vocab::Page;

use super::qemu::{self, VmConfig};

/// How long a guest's worker may take to answer one request by default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The kernel the `kernel` backend runs on.
#[derive(Clone, Debug, Default)]
pub enum KernelTarget {
    /// This machine's kernel, in a local worker process.
    #[default]
    Host,
    /// A kernel image booted under qemu, the worker in the guest.
    Vm(VmConfig),
}

impl KernelTarget {
    /// A guest of `image` with `mem_mb` MB (default
    /// [`qemu::DEFAULT_MEM_MB`]), running the worker of the uffd-check
    /// binary ([`crate::backends::worker_exe`]): checks the VM's
    /// dependencies and the image, and builds (or finds cached) the
    /// initramfs. `uffd-check … --vm IMAGE [--vm-mem MB]`.
    pub fn vm(image: &Path, mem_mb: Option<u32>) -> Result<KernelTarget, String> {
        KernelTarget::vm_of(image, mem_mb, &crate::backends::worker_exe()?)
    }

    /// [`KernelTarget::vm`] with the harness binary given (tests give the
    /// binary cargo built).
    pub fn vm_of(
        image: &Path,
        mem_mb: Option<u32>,
        harness: &Path,
    ) -> Result<KernelTarget, String> {
        super::check_dependencies()?;
        qemu::image_release(image)?;
        let initramfs = super::initramfs::build(harness)?;
        Ok(KernelTarget::Vm(VmConfig {
            image: image.to_path_buf(),
            initramfs,
            mem_mb: mem_mb.unwrap_or(qemu::DEFAULT_MEM_MB),
        }))
    }

    /// Can the kernel backend run on this target? `Err` says why not: for
    /// the host, [`uffd_kernel::available`]; for a guest, the VM's
    /// dependencies and a readable image (whether the guest kernel allows
    /// userfaultfd shows when its worker starts: it answers `fail` then).
    pub fn available(&self) -> Result<(), String> {
        match self {
            KernelTarget::Host => uffd_kernel::available(),
            KernelTarget::Vm(cfg) => {
                super::check_dependencies()?;
                qemu::image_release(&cfg.image).map(|_| ())
            }
        }
    }

    /// The release of the target's kernel: `uname -r` here, the image's
    /// (read from its header) for a guest.
    pub fn release(&self) -> String {
        match self {
            KernelTarget::Host => uffd_kernel::release(),
            KernelTarget::Vm(cfg) => guest_release(cfg),
        }
    }

    /// The run header's line: `live kernel: Linux 6.18.44` here,
    /// `kernel: Linux 6.1.0-57-amd64 (in a VM: IMAGE)` for a guest.
    pub fn note(&self) -> String {
        match self {
            KernelTarget::Host => format!("live kernel: Linux {}", uffd_kernel::release()),
            KernelTarget::Vm(cfg) => format!(
                "kernel: Linux {} ({})",
                guest_release(cfg),
                place(&cfg.image)
            ),
        }
    }

    /// The flags that name this target on a command line, for the
    /// commands that reproduce a run: nothing here, ` --vm IMAGE` (and
    /// ` --vm-mem MB` when not the default) for a guest.
    pub fn flags(&self) -> String {
        match self {
            KernelTarget::Host => String::new(),
            KernelTarget::Vm(cfg) if cfg.mem_mb == qemu::DEFAULT_MEM_MB => {
                format!(" --vm {}", cfg.image.display())
            }
            KernelTarget::Vm(cfg) => {
                format!(" --vm {} --vm-mem {}", cfg.image.display(), cfg.mem_mb)
            }
        }
    }

    /// A kernel backend with an arena of `pages` pages on this target;
    /// for a guest this boots it and waits for the worker's `ready`.
    pub fn backend(&self, pages: Page) -> Result<KernelBackend, String> {
        match self {
            KernelTarget::Host => {
                uffd_kernel::available()?;
                KernelBackend::spawn(pages, &crate::backends::worker_exe()?)
            }
            KernelTarget::Vm(cfg) => KernelBackend::start(pages, worker_command(cfg, pages)?),
        }
    }
}

/// The recipe that boots `cfg` with the worker (`uffd-check __worker
/// PAGES`) on the guest's channel: qemu's stdin and stdout are the
/// protocol, the console goes to a fresh log the backend quotes and removes.
pub fn worker_command(cfg: &VmConfig, pages: Page) -> Result<WorkerCommand, String> {
    super::check_dependencies()?;
    let console: PathBuf = qemu::console_path();
    let c = qemu::worker_command(cfg, &console, pages)?;
    Ok(WorkerCommand {
        program: c.get_program().into(),
        args: c.get_args().map(Into::into).collect(),
        start_timeout: qemu::boot_timeout(),
        timeout: REQUEST_TIMEOUT,
        log: Some(console),
        place: Some(place(&cfg.image)),
        release: Some(guest_release(cfg)),
    })
}

/// `in a VM: IMAGE`.
fn place(image: &Path) -> String {
    format!("in a VM: {}", image.display())
}

/// The image's release, or `unknown` when its header has none.
fn guest_release(cfg: &VmConfig) -> String {
    qemu::image_release(&cfg.image).unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_target_is_this_machine() {
        let t = KernelTarget::default();
        assert!(t.note().starts_with("live kernel: Linux "));
        assert_eq!(t.flags(), "");
        let vm = |mem_mb| {
            KernelTarget::Vm(VmConfig {
                image: "/k/vmlinuz".into(),
                initramfs: "/i".into(),
                mem_mb,
            })
        };
        assert_eq!(vm(qemu::DEFAULT_MEM_MB).flags(), " --vm /k/vmlinuz");
        assert_eq!(vm(256).flags(), " --vm /k/vmlinuz --vm-mem 256");
        assert_eq!(t.release(), uffd_kernel::release());
    }

    #[test]
    fn a_vm_recipe_boots_the_worker_and_names_its_place() {
        if super::super::check_dependencies().is_err() {
            return;
        }
        let cfg = VmConfig {
            image: "/k/vmlinuz".into(),
            initramfs: "/i".into(),
            mem_mb: 256,
        };
        let c = worker_command(&cfg, 16).unwrap();
        assert_eq!(c.program, Path::new("qemu-system-x86_64"));
        let args: Vec<String> = c.args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert!(
            args.iter()
                .any(|a| a.ends_with("-- uffd-check __worker 16")),
            "{args:?}"
        );
        assert_eq!(c.place.as_deref(), Some("in a VM: /k/vmlinuz"));
        assert_eq!(c.release.as_deref(), Some("unknown"));
        assert_eq!(c.timeout, REQUEST_TIMEOUT);
        assert!(c.log.is_some());
    }
}
