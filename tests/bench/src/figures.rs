//! The median of several windows with their range, as the tables print them.

/// Median, smallest and largest of a set of figures.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (at least one).
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Spread {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// `median [min–max]` in whole units.
    pub fn cell(&self) -> String {
        format!("{:.0} [{:.0}–{:.0}]", self.median, self.min, self.max)
    }
}
