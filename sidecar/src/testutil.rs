//! The engine fixture of the ext_authz tests: [`stepup_core::testkit::world`] at the
//! real clock (the handlers read it).

use stepup_core::clock;
use stepup_core::session::Factor;
pub use stepup_core::testkit::TEST_CLIENT_ID as CLIENT_ID;
use stepup_core::testkit::world::EngineWorld;

pub struct World(pub EngineWorld);

pub async fn world() -> World {
    World(EngineWorld::new(Vec::new(), clock::now()).await)
}

impl std::ops::Deref for World {
    type Target = EngineWorld;
    fn deref(&self) -> &EngineWorld {
        &self.0
    }
}

impl World {
    pub async fn complete(&self, jti: &str) {
        self.0.complete(jti, Factor::Sms).await;
    }
}
