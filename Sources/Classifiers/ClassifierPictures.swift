import Foundation
import Imaging

/// The pictures a classifier run writes: its learning curve and the test set's confusion matrix.
public enum ClassifierPictures {
    /// Loss (top) and accuracy (bottom) per epoch, training and validation, from `metrics.csv` rows.
    public static func learningCurve(_ history: [[String: Double]], title: String) -> RGBImage {
        let epochs = history.map { $0["epoch"] ?? 0 }
        func plot(_ what: String, _ keys: [String], _ yLabel: String) -> RGBImage {
            let colors = [RGB(200, 40, 40), RGB(40, 90, 200)]
            let series = keys.enumerated().compactMap { i, key -> LinePlot.Series? in
                let y = history.map { $0[key] ?? .nan }
                guard y.contains(where: { !$0.isNaN }) else { return nil }
                return LinePlot.Series(label: key, x: epochs, y: y, color: colors[i], lineWidth: 2)
            }
            return LinePlot(title: "\(title): \(what)", xLabel: "epoch", yLabel: yLabel, series: series).render(width: 800, height: 400)
        }
        let loss = plot("loss", ["train_loss", "val_loss"], "mean loss")
        let accuracy = plot("accuracy", ["train_accuracy", "val_accuracy"], "accuracy")
        var image = RGBImage(width: 800, height: loss.height + accuracy.height)
        image.blit(loss, x: 0, y: 0)
        image.blit(accuracy, x: 0, y: loss.height)
        return image
    }

    /// Each class's share of correct predictions (`confusion[true][predicted]`); 0 for a class with no images.
    public static func perClassAccuracy(_ confusion: [[Int]]) -> [Double] {
        confusion.enumerated().map { k, row in
            let total = row.reduce(0, +)
            return total > 0 ? Double(row[k]) / Double(total) : 0
        }
    }

    /// The counts as a grid, rows the true class and columns the predicted one, each cell shaded by its share of the row.
    public static func confusionMatrix(_ confusion: [[Int]], title: String) -> RGBImage {
        let k = confusion.count, cell = 44, left = 40, top = 56
        var image = RGBImage(width: left + k * cell + 20, height: top + k * cell + 36)
        image.drawText(title, x: 8, y: 8, color: .black)
        image.drawText("rows: true class, columns: predicted", x: 8, y: 28, color: RGB(90, 90, 90))
        for t in 0..<k {
            let total = max(confusion[t].reduce(0, +), 1)
            image.drawText(String(t), x: left - 16, y: top + t * cell + cell / 2 - 4, color: .black)
            image.drawText(String(t), x: left + t * cell + cell / 2 - 4, y: top + k * cell + 8, color: .black)
            for p in 0..<k {
                let share = Double(confusion[t][p]) / Double(total)
                let shade = UInt8(255 - (215 * share.squareRoot()).rounded())
                let (x, y) = (left + p * cell, top + t * cell)
                image.fillRect(x: x, y: y, width: cell, height: cell, color: t == p ? RGB(shade, 255, shade) : RGB(255, shade, shade))
                image.strokeRect(x: x, y: y, width: cell, height: cell, color: RGB(200, 200, 200))
                let text = String(confusion[t][p])
                let size = RGBImage.textSize(text)
                image.drawText(text, x: x + (cell - size.width) / 2, y: y + (cell - size.height) / 2, color: .black)
            }
        }
        return image
    }
}
