//! The secure-share pages (being written).

use poem::Route;

/// The routes under `/s`.
pub fn routes() -> Route {
    Route::new()
}
