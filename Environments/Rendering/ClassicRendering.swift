import Foundation
import Imaging

/// Drawings in the style of Gymnasium's `rgb_array` renders (same sizes, geometry and colours), made with
/// Imaging's primitives. Gymnasium draws in y-up screen coordinates; `flip` converts a y-up pixel row.

extension CartPole {
    public func render() -> RGBImage {
        let width = 600, height = 400
        var img = RGBImage(width: width, height: height, fill: .white)
        let worldWidth = Self.xThreshold * 2, scale = Double(width) / worldWidth
        let poleWidth = 10.0, poleLength = scale * (2 * Self.length), cartWidth = 50.0, cartHeight = 30.0
        let flip = { (y: Double) in Double(height) - y }
        let cartX = state.x * scale + Double(width) / 2, cartY = 100.0
        let l = -cartWidth / 2, r = cartWidth / 2, t = cartHeight / 2, b = -cartHeight / 2
        img.fillPolygon([(l, b), (l, t), (r, t), (r, b)].map { (cartX + $0.0, flip(cartY + $0.1)) }, color: .black)
        let axleOffset = cartHeight / 4
        let pole = [(-poleWidth / 2, -poleWidth / 2), (-poleWidth / 2, poleLength - poleWidth / 2),
                    (poleWidth / 2, poleLength - poleWidth / 2), (poleWidth / 2, -poleWidth / 2)].map { p -> (x: Double, y: Double) in
            // Rotate by −θ (Gymnasium's pygame.math.Vector2.rotate_rad(-x[2])).
            let c = Foundation.cos(-state.theta), s = Foundation.sin(-state.theta)
            return (cartX + p.0 * c - p.1 * s, flip(cartY + axleOffset + p.0 * s + p.1 * c))
        }
        img.fillPolygon(pole, color: RGB(202, 152, 101))
        img.fillCircle(cx: cartX, cy: flip(cartY + axleOffset), radius: poleWidth / 2, color: RGB(129, 132, 203))
        img.fillRect(x: 0, y: Int(flip(cartY)), width: width, height: 1, color: .black)
        return img
    }
}

/// The mountain's height at `x`, shared by both MountainCar variants.
func mountainHeight(_ x: Double) -> Double { Foundation.sin(3 * x) * 0.45 + 0.55 }

/// Draws the mountain, car and flag for a car at `position` (both MountainCar variants).
func renderMountainCar(position: Double, goal: Double) -> RGBImage {
    let width = 600, height = 400
    var img = RGBImage(width: width, height: height, fill: .white)
    let minX = -1.2, maxX = 0.6, scale = Double(width) / (maxX - minX)
    let flip = { (y: Double) in Double(height) - y }
    var previous: (x: Double, y: Double)?
    for i in 0...100 {
        let x = minX + (maxX - minX) * Double(i) / 100
        let p = ((x - minX) * scale, flip(mountainHeight(x) * scale))
        if let q = previous { img.drawLine(x0: q.x, y0: q.y, x1: p.0, y1: p.1, width: 2, color: .black) }
        previous = p
    }
    let clearance = 10.0, carWidth = 40.0, carHeight = 20.0
    let angle = Foundation.cos(3 * position)
    let origin = ((position - minX) * scale, clearance + mountainHeight(position) * scale)
    func place(_ p: (Double, Double)) -> (x: Double, y: Double) {
        let c = Foundation.cos(angle), s = Foundation.sin(angle)
        return (origin.0 + p.0 * c - p.1 * s, flip(origin.1 + p.0 * s + p.1 * c))
    }
    img.fillPolygon([(-carWidth / 2, 0), (-carWidth / 2, carHeight), (carWidth / 2, carHeight), (carWidth / 2, 0)].map(place), color: .black)
    for wheel in [(carWidth / 4, 0.0), (-carWidth / 4, 0.0)] {
        let c = place(wheel)
        img.fillCircle(cx: c.x, cy: c.y, radius: carHeight / 2.5, color: RGB(128, 128, 128))
    }
    let flagX = (goal - minX) * scale, flagBottom = mountainHeight(goal) * scale, flagTop = flagBottom + 50
    img.drawLine(x0: flagX, y0: flip(flagBottom), x1: flagX, y1: flip(flagTop), width: 2, color: .black)
    img.fillPolygon([(flagX, flip(flagTop)), (flagX, flip(flagTop - 10)), (flagX + 25, flip(flagTop - 5))], color: RGB(204, 204, 0))
    return img
}

extension MountainCar {
    public func render() -> RGBImage { renderMountainCar(position: state.position, goal: Self.goalPosition) }
}

extension MountainCarContinuous {
    public func render() -> RGBImage { renderMountainCar(position: state.position, goal: Self.goalPosition) }
}

extension Pendulum {
    public func render() -> RGBImage {
        let size = 500
        var img = RGBImage(width: size, height: size, fill: .white)
        let bound = 2.2, scale = Double(size) / (bound * 2), offset = Double(size) / 2
        let rodLength = 1 * scale, rodWidth = 0.2 * scale
        // θ = 0 is upright; Gymnasium rotates by θ + π/2 in y-up coordinates.
        let angle = state.theta + Double.pi / 2
        let end = (offset + rodLength * Foundation.cos(angle), Double(size) - (offset + rodLength * Foundation.sin(angle)))
        img.drawLine(x0: offset, y0: offset, x1: end.0, y1: end.1, width: rodWidth, color: RGB(204, 77, 77))
        img.fillCircle(cx: offset, cy: offset, radius: rodWidth / 2, color: RGB(204, 77, 77))
        img.fillCircle(cx: end.0, cy: end.1, radius: rodWidth / 2, color: RGB(204, 77, 77))
        img.fillCircle(cx: offset, cy: offset, radius: 0.05 * scale, color: .black)
        if let u = lastTorque, u != 0 {
            // The applied torque as an arrow along the bottom, scaled by its magnitude.
            let length = u / Self.maxTorque * scale * 0.8
            img.drawArrow(x0: offset, y0: Double(size) - 30, x1: offset + length, y1: Double(size) - 30, width: 4, color: .black)
        }
        return img
    }
}

extension Acrobot {
    public func render() -> RGBImage {
        let size = 500
        var img = RGBImage(width: size, height: size, fill: .white)
        let bound = Self.linkLength1 + Self.linkLength2 + 0.2, scale = Double(size) / (bound * 2), offset = Double(size) / 2
        let flip = { (y: Double) in Double(size) - y }
        // The goal line at height 1.
        img.drawLine(x0: -2.2 * scale + offset, y0: flip(1 * scale + offset), x1: 2.2 * scale + offset, y1: flip(1 * scale + offset),
                     width: 1, color: .black)
        let p1 = (-Self.linkLength1 * Foundation.cos(state.0) * scale, Self.linkLength1 * Foundation.sin(state.0) * scale)
        let p2 = (p1.0 - Self.linkLength2 * Foundation.cos(state.0 + state.1) * scale, p1.1 + Self.linkLength2 * Foundation.sin(state.0 + state.1) * scale)
        // Gymnasium's points are (y, x) pairs of the pendulum frame: x = p.1, y = p.0 upward.
        let joints = [(0.0, 0.0), (p1.1, p1.0), (p2.1, p2.0)].map { (x: $0.0 + offset, y: flip($0.1 + offset)) }
        for k in 0..<2 {
            img.drawLine(x0: joints[k].x, y0: joints[k].y, x1: joints[k + 1].x, y1: joints[k + 1].y, width: 0.2 * scale, color: RGB(0, 204, 204))
            img.fillCircle(cx: joints[k].x, cy: joints[k].y, radius: 0.1 * scale, color: RGB(204, 204, 0))
        }
        return img
    }
}
