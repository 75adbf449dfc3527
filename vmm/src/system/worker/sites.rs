//! How a worker thread serves the two components it calls: [`RecoverySite`] for the
//! recovery of its servers, [`KernelSite`] for the kernel calls of its domains.

use std::time::Duration;

use ankh_recovery::{Coverage, RecoveryEvent, WindowState};
use virtio_seep::errno::Errno;
use virtio_seep::message::{DomainId, VMM_DOMAIN};

use super::{Slot, Thread, Worker};
use crate::domain::{Domain, DomainConfig, DomainError};
use crate::image::GuestImage;
use crate::ipc::router::{Activity, Role, Wait};
use crate::ipc::Message;
use crate::system::control::ControlHub;
use crate::system::held::Effect;
use crate::system::injection::Injection;
use crate::system::kernel::KernelSite;
use crate::system::process_manager::{domain_stopped, ExitCause};
use crate::system::recovery::RecoverySite;
use crate::system::{Resumption, SystemOptions, SystemStop};

impl RecoverySite for Thread<'_> {
    fn request_budget(&self) -> Duration {
        self.spawner.options.request_budget
    }

    fn fallback_restart(&self) -> bool {
        self.spawner.options.fallback_restart
    }

    fn hub(&self) -> Option<&ControlHub> {
        self.spawner.options.control.as_deref()
    }

    fn strike_when_not_running(&mut self, id: DomainId, injection: Injection) {
        self.pending.push((id, injection));
    }

    fn at_request_boundary(&self, id: DomainId) -> bool {
        matches!(
            self.lock().router.activity(id),
            Activity::Waiting(Wait::Receive { from: None })
        )
    }

    fn request_finished(&mut self, id: DomainId, finished: WindowState, ran: Coverage) {
        self.lock().coverage.record_request(id, finished, ran);
    }

    fn resumed(&mut self, resumption: Resumption) {
        self.lock().resumptions.push(resumption);
    }

    fn rolled_back(&mut self, id: DomainId, replay: Option<Message>, abandoned: Option<u64>) {
        let mut state = self.lock();
        if let Some(message) = replay {
            state.router.requeue_front(id, message);
        }
        let woken = state.router.recovered(id, abandoned);
        self.schedule(&mut state, &woken);
    }

    fn restarted(&mut self, id: DomainId) {
        let mut state = self.lock();
        let woken = state.router.restarted(id);
        self.schedule(&mut state, &woken);
    }

    fn boot(&self, config: &DomainConfig, image: &GuestImage) -> Result<Domain, DomainError> {
        let console = (self.spawner.options.console)(&config.name);
        Domain::create(self.spawner.host, config, image, console)
    }

    fn stop_system(&mut self, stop: SystemStop) {
        let mut state = self.lock();
        state.stop(stop);
        self.notify_others();
    }

    fn recorded(&mut self, event: RecoveryEvent) {
        self.lock().recoveries.push(event);
    }
}

impl KernelSite for Worker<'_> {
    fn options(&self) -> &SystemOptions {
        self.thread.spawner.options
    }

    fn add_process(&mut self, parent: DomainId, name: &str) -> (DomainId, Vec<(DomainId, String)>) {
        let index = self.thread.index;
        let mut state = self.lock();
        let parent_is_process = parent != VMM_DOMAIN
            && parent <= state.router.domain_count()
            && state.router.role(parent) == Role::Process;
        let callees = match parent_is_process {
            true => state.router.callees(parent),
            false => state.process_callees.clone(),
        };
        let id = state.router.add_domain(Role::Process, &callees);
        state.names.insert(id, name.to_owned());
        state.turns.place(id, index);
        let peers = callees
            .iter()
            .map(|c| (*c, state.names.get(c).cloned().unwrap_or_default()))
            .collect();
        (id, peers)
    }

    fn boot(&self, config: &DomainConfig, image: &GuestImage) -> Result<Domain, DomainError> {
        self.thread.boot(config, image)
    }

    fn hold(&mut self, caller: DomainId, id: DomainId, domain: Domain) {
        self.slots.insert(id, Slot::new(domain, None));
        self.held.insert(id);
        if self.holding == Some(caller) {
            self.held_for(caller).created(id);
        }
    }

    fn creation_failed(&mut self, id: DomainId) {
        let mut state = self.lock();
        let woken = domain_stopped(&mut state.router, id, ExitCause::FAULT);
        self.thread.schedule(&mut state, &woken);
    }

    fn start(&mut self, caller: DomainId, id: DomainId) -> bool {
        if !self.held.remove(&id) {
            return false;
        }
        if self.holding == Some(caller) {
            self.held_for(caller).hold(Effect::Start(id));
            return true;
        }
        let index = self.thread.index;
        self.lock().turns.push_back(index, id);
        true
    }

    fn kill(&mut self, caller: DomainId, target: DomainId) -> Result<(), Errno> {
        self.check_kill(caller, target)?;
        match self.holding == Some(caller) {
            true => self.held_for(caller).hold(Effect::Kill(target)),
            false => self.perform_kill(caller, target),
        }
        Ok(())
    }
}
