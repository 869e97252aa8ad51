//! Generations' output images, kept in our bucket (R2) because FAL deletes
//! its own: captured when a generation ends (`keep`, `capture`, `download`),
//! linked by signed URLs (`links`), and removed by retention and erasure
//! (`retention`). The lifecycle calls `keep`; the HTTP layer serves and
//! links; the cron runs `retention`.

pub mod capture;
pub mod download;
pub mod keep;
pub mod links;
pub mod retention;
