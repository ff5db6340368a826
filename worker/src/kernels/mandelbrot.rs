//! The `mandelbrot` kernel: escape-time iteration counts, one image row per index.
//!
//! Parameters: `width` (default 800, 1..=100_000), `height` (default 600, at least 1),
//! `iterations` (default 256, 1..=u32::MAX), `x0` (default -2.5) < `x1` (default 1.0),
//! `y0` (default -1.25) < `y1` (default 1.25).
//!
//! Each index is a row `y` (it must be below `height`), counted from the top of the image as in
//! every image format: row 0 is at `y1`. Pixel `(px, y)` maps to
//! `c_re = x0 + (px + 0.5) * (x1 - x0) / width` and `c_im = y1 - (y + 0.5) * (y1 - y0) / height`
//! (evaluated left to right in f64). Starting from `z = 0`, the pixel's value is the number of
//! steps `z_re' = z_re*z_re - z_im*z_im + c_re`, `z_im' = 2*z_re*z_im + c_im` taken until
//! `z_re*z_re + z_im*z_im > 4` or the count reaches `iterations` (which then means "inside").
//! The output is `Output::Rows` with one row of `width` values per index.

use crate::kernels::params::Indices;
use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec, Params,
    Prepared, ShardInput,
};

/// The `mandelbrot` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mandelbrot;

impl Kernel for Mandelbrot {
    fn name(&self) -> &str {
        "mandelbrot"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "escape-time iteration counts of the Mandelbrot set, one image row per index";
        let (lo, hi) = (f64::MIN, f64::MAX);
        KernelDescriptor::new(self.name(), OutputShape::Rows, help)
            .param(ParamSpec::uint("width", 800, 1, 100_000, "pixels per row"))
            .param(
                ParamSpec::uint("height", 600, 1, u64::MAX, "rows in the image").bounding_indices(),
            )
            .param(ParamSpec::uint("iterations", 256, 1, u32::MAX.into(), "most steps per pixel"))
            .param(ParamSpec::float("x0", -2.5, lo, hi, "left edge of the viewport"))
            .param(ParamSpec::float("x1", 1.0, lo, hi, "right edge of the viewport"))
            .param(ParamSpec::float("y0", -1.25, lo, hi, "bottom edge of the viewport"))
            .param(ParamSpec::float("y1", 1.25, lo, hi, "top edge of the viewport"))
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let (width, height) = (params.uint("width")?, params.uint("height")?);
        let iterations = u32::try_from(params.uint("iterations")?)
            .map_err(|_| KernelError::BadParam("bad param iterations: too large".into()))?;
        let (x0, x1) = (params.float("x0")?, params.float("x1")?);
        let (y0, y1) = (params.float("y0")?, params.float("y1")?);
        if x0 >= x1 {
            return Err(KernelError::BadParam(format!(
                "bad param x0: must be less than x1, got x0 = {x0}, x1 = {x1}"
            )));
        }
        if y0 >= y1 {
            return Err(KernelError::BadParam(format!(
                "bad param y0: must be less than y1, got y0 = {y0}, y1 = {y1}"
            )));
        }
        Ok(Box::new(PreparedMandelbrot { width, height, iterations, x0, x1, y0, y1 }))
    }
}

struct PreparedMandelbrot {
    width: u64,
    height: u64,
    iterations: u32,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl PreparedMandelbrot {
    fn row(&self, y: u64, budget: &mut Budget<'_>) -> Result<Vec<u32>, KernelError> {
        // Row 0 is the top of the image: the largest imaginary part.
        let ci = self.y1 - (y as f64 + 0.5) * (self.y1 - self.y0) / self.height as f64;
        (0..self.width)
            .map(|px| {
                let cr = self.x0 + (px as f64 + 0.5) * (self.x1 - self.x0) / self.width as f64;
                escape_count(cr, ci, self.iterations, budget)
            })
            .collect()
    }
}

/// Iterations between two checks of the cancel flag: well under a millisecond of work, so a
/// cancel or a shard timeout bites within a pixel, however many iterations a pixel may take.
const CHECK_EVERY: u32 = 1 << 16;

/// Counts work done since the cancel flag was last checked.
struct Budget<'a> {
    cancel: &'a CancelFlag,
    spent: u32,
}

impl Budget<'_> {
    /// Records `steps` more iterations; checks the flag once enough have passed.
    fn spend(&mut self, steps: u32) -> Result<(), KernelError> {
        self.spent = self.spent.saturating_add(steps);
        if self.spent >= CHECK_EVERY {
            self.spent = 0;
            self.cancel.check()?;
        }
        Ok(())
    }
}

/// Steps of `z = z^2 + c` from `z = 0` until `|z|^2 > 4`, at most `iterations`; checks the
/// cancel flag every [`CHECK_EVERY`] steps (counting each pixel as at least one).
fn escape_count(
    cr: f64,
    ci: f64,
    iterations: u32,
    budget: &mut Budget<'_>,
) -> Result<u32, KernelError> {
    let (mut zr, mut zi) = (0.0f64, 0.0f64);
    let mut n = 0;
    while n < iterations {
        let start = n;
        let stop = n.saturating_add(CHECK_EVERY).min(iterations);
        while n < stop {
            let (zr2, zi2) = (zr * zr, zi * zi);
            if zr2 + zi2 > 4.0 {
                budget.spend(n - start + 1)?;
                return Ok(n);
            }
            zi = 2.0 * zr * zi + ci;
            zr = zr2 - zi2 + cr;
            n += 1;
        }
        budget.spend(n - start + 1)?;
    }
    Ok(n)
}

impl Prepared for PreparedMandelbrot {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let indices = Indices::of(shard)?;
        let mut rows = Vec::with_capacity(usize::try_from(indices.len()).unwrap_or(0).min(4096));
        let mut budget = Budget { cancel, spent: 0 };
        for y in indices.iter() {
            cancel.check()?;
            if y >= self.height {
                return Err(KernelError::BadParam(format!(
                    "row {y} is out of range: height is {}",
                    self.height
                )));
            }
            rows.push(self.row(y, &mut budget)?);
        }
        Ok(Output::Rows(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{line, params, range};
    use crate::sdk::prepare_checked;

    fn run(p: &[(&str, &str)], shard: ShardInput) -> Result<Output, KernelError> {
        prepare_checked(&Mandelbrot, &params(p))?.run(&shard, &CancelFlag::default())
    }

    fn one_pixel(cx: &str, iterations: &str) -> Result<Output, KernelError> {
        // A 1x1 image whose only pixel centre is (cx, 0): the window is [cx - 1, cx + 1]^2.
        let c: f64 = cx.parse().unwrap();
        let (x0, x1) = ((c - 1.0).to_string(), (c + 1.0).to_string());
        let p = [
            ("width", "1"),
            ("height", "1"),
            ("iterations", iterations),
            ("x0", x0.as_str()),
            ("x1", x1.as_str()),
            ("y0", "-1"),
            ("y1", "1"),
        ];
        run(&p, range(0, 1))
    }

    #[test]
    fn exact_pixels() {
        // c = 2: z = 2 (|z|^2 = 4, not > 4), then 6: escapes after 2 steps.
        assert_eq!(one_pixel("2", "100"), Ok(Output::Rows(vec![vec![2]])));
        // c = -2: z stays at 2 with |z|^2 = 4 forever: inside.
        assert_eq!(one_pixel("-2", "100"), Ok(Output::Rows(vec![vec![100]])));
        // c = 0 is inside; capped by iterations.
        assert_eq!(one_pixel("0", "7"), Ok(Output::Rows(vec![vec![7]])));
        // c = 3: z = 3 escapes after 1 step.
        assert_eq!(one_pixel("3", "7"), Ok(Output::Rows(vec![vec![1]])));
        let cancel = CancelFlag::new();
        let mut budget = Budget { cancel: &cancel, spent: 0 };
        assert_eq!(escape_count(0.3, 0.0, 1000, &mut budget), Ok(12));
    }

    #[test]
    fn default_image_rows() {
        let out = run(&[], range(299, 301)).unwrap();
        let Output::Rows(rows) = out else { panic!("expected rows") };
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.len() == 800));
        // Rows 299 and 300 are mirror images about the real axis.
        assert_eq!(rows[0], rows[1]);
        // Left edge (c_re ~ -2.5) escapes at once; c ~ (-0.5, 0) is inside.
        assert_eq!(rows[0][0], 1);
        assert_eq!(rows[0][457], 256);
        assert!(rows[0].iter().all(|&v| v <= 256));
        // Reference sum from an independent Python reimplementation of the contract.
        assert_eq!(rows[0].iter().map(|&v| u64::from(v)).sum::<u64>(), 102_575);
        // An input line names one row.
        let single = run(&[("width", "10"), ("height", "10")], line(0, "5")).unwrap();
        assert!(matches!(single, Output::Rows(r) if r.len() == 1 && r[0].len() == 10));
    }

    #[test]
    fn row_zero_is_the_top_of_the_image() {
        // One column at c_re = -0.5; row 0 at c_im = 1.5 (outside: z = -2.5 after two steps), row 1 at
        // c_im = 0.5 (inside the main cardioid).
        let p = [("width", "1"), ("height", "2"), ("iterations", "50")];
        let p = [&p[..], &[("x0", "-1"), ("x1", "0"), ("y0", "0"), ("y1", "2")]].concat();
        let Ok(Output::Rows(rows)) = run(&p, range(0, 2)) else { panic!("rows") };
        assert_eq!(rows[0][0], 2, "row 0 is near y1 = 2, outside the set");
        assert_eq!(rows[1][0], 50, "row 1 is near y0, inside the set");
    }

    #[test]
    fn row_out_of_range() {
        assert_eq!(
            run(&[("height", "10")], range(8, 11)),
            Err(KernelError::BadParam("row 10 is out of range: height is 10".into()))
        );
    }

    #[test]
    fn param_errors() {
        let bad = |p: &[(&str, &str)]| match run(p, range(0, 1)) {
            Err(KernelError::BadParam(m)) => m,
            other => panic!("expected BadParam, got {other:?}"),
        };
        assert_eq!(bad(&[("width", "0")]), "bad param width: must be at least 1, got 0");
        assert_eq!(
            bad(&[("width", "100001")]),
            "bad param width: must be at most 100000, got 100001"
        );
        assert_eq!(bad(&[("height", "0")]), "bad param height: must be at least 1, got 0");
        assert_eq!(bad(&[("iterations", "0")]), "bad param iterations: must be at least 1, got 0");
        assert!(bad(&[("x0", "1"), ("x1", "1")]).starts_with("bad param x0: must be less than x1"));
        assert!(bad(&[("y0", "2")]).starts_with("bad param y0: must be less than y1"));
        assert_eq!(bad(&[("x0", "left")]), r#"bad param x0: "left" is not a finite number"#);
        assert!(bad(&[("zoom", "2")]).starts_with("unknown param zoom for kernel mandelbrot"));
    }

    #[test]
    fn cancelled() {
        let job = prepare_checked(&Mandelbrot, &Params::default()).unwrap();
        let cancel = CancelFlag::default();
        cancel.cancel();
        assert_eq!(job.run(&range(0, 600), &cancel), Err(KernelError::Cancelled));
    }
}
