//! The squarified treemap layout of Bruls, Huizing and van Wijk ("Squarified Treemaps", 2000): tiles
//! laid in rows along the shorter side of what is left, a row growing while that makes its worst
//! aspect ratio no worse. Each tile's area is exactly its share of the whole.

/// A rectangle in drawing units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// The worst aspect ratio of a row of areas summing to `sum`, laid along a side of length `side`.
fn worst(sum: f64, min: f64, max: f64, side: f64) -> f64 {
    let (s2, side2) = (sum * sum, side * side);
    (side2 * max / s2).max(s2 / (side2 * min))
}

/// Lays `sizes` (positive, largest first) out in `bounds`; a rectangle per size, in their order.
pub fn squarify(sizes: &[f64], bounds: Rect) -> Vec<Rect> {
    let total: f64 = sizes.iter().sum();
    if sizes.is_empty() || total <= 0.0 || bounds.w <= 0.0 || bounds.h <= 0.0 {
        return vec![
            Rect {
                w: 0.0,
                h: 0.0,
                ..bounds
            };
            sizes.len()
        ];
    }
    let scale = bounds.w * bounds.h / total;
    let areas: Vec<f64> = sizes.iter().map(|s| s * scale).collect();
    let mut out = Vec::with_capacity(areas.len());
    let mut free = bounds;
    let mut start = 0;
    while start < areas.len() {
        let side = free.w.min(free.h);
        let (mut end, mut sum) = (start + 1, areas[start]);
        let (mut min, mut max) = (areas[start], areas[start]);
        while end < areas.len() {
            let a = areas[end];
            let (n_min, n_max) = (min.min(a), max.max(a));
            if worst(sum + a, n_min, n_max, side) > worst(sum, min, max, side) {
                break;
            }
            (sum, min, max, end) = (sum + a, n_min, n_max, end + 1);
        }
        // The row takes a strip of the free space along its shorter side.
        let last = end == areas.len();
        if free.w >= free.h {
            let strip = if last { free.w } else { sum / free.h };
            let mut y = free.y;
            for a in &areas[start..end] {
                let h = a / sum * free.h;
                out.push(Rect {
                    x: free.x,
                    y,
                    w: strip,
                    h,
                });
                y += h;
            }
            free = Rect {
                x: free.x + strip,
                w: free.w - strip,
                ..free
            };
        } else {
            let strip = if last { free.h } else { sum / free.w };
            let mut x = free.x;
            for a in &areas[start..end] {
                let w = a / sum * free.w;
                out.push(Rect {
                    x,
                    y: free.y,
                    w,
                    h: strip,
                });
                x += w;
            }
            free = Rect {
                y: free.y + strip,
                h: free.h - strip,
                ..free
            };
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_in_proportion_and_the_tiles_cover_the_bounds_without_overlap() {
        // The paper's example: a 6 by 4 rectangle and areas 6, 6, 4, 3, 2, 2, 1.
        let sizes = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let bounds = Rect {
            x: 0.0,
            y: 0.0,
            w: 6.0,
            h: 4.0,
        };
        let tiles = squarify(&sizes, bounds);
        for (t, s) in tiles.iter().zip(sizes) {
            assert!((t.w * t.h - s).abs() < 1e-9, "{t:?} for {s}");
            assert!(
                t.x >= -1e-9 && t.y >= -1e-9 && t.x + t.w <= 6.0 + 1e-9 && t.y + t.h <= 4.0 + 1e-9
            );
        }
        for (i, a) in tiles.iter().enumerate() {
            for b in &tiles[i + 1..] {
                let overlap_w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                let overlap_h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                assert!(overlap_w <= 1e-9 || overlap_h <= 1e-9, "{a:?} {b:?}");
            }
        }
        // As in the paper, the first two tiles share the first column, each 3 by 2.
        assert!(
            (tiles[0].w - 3.0).abs() < 1e-9 && (tiles[0].h - 2.0).abs() < 1e-9,
            "{tiles:?}"
        );
        // Squarified: no tile is worse than 3:1 here.
        assert!(
            tiles.iter().all(|t| t.w.max(t.h) / t.w.min(t.h) < 3.0),
            "{tiles:?}"
        );
    }

    #[test]
    fn one_size_fills_the_bounds_and_none_gives_nothing() {
        let bounds = Rect {
            x: 1.0,
            y: 2.0,
            w: 10.0,
            h: 5.0,
        };
        assert_eq!(squarify(&[42.0], bounds), vec![bounds]);
        assert!(squarify(&[], bounds).is_empty());
    }
}
