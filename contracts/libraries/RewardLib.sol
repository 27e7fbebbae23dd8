// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Reward arithmetic: stakes, the split of the pool price, the kitty reward. Pure, no storage.
library RewardLib {
    /// @notice Percentage of the pool price the scheduler stakes per task.
    uint256 internal constant SCHEDULER_STAKE_RATIO = 30;
    /// @notice Percentage of the kitty a finalizing scheduler receives (at least `kittyMin`, at most the kitty).
    uint256 internal constant KITTY_RATIO = 10;

    /// @notice Stake each contribution locks: the pool's ratio of its price, never below the protocol minimum.
    function workerStake(uint256 workerpoolPrice, uint256 workerStakeRatio, uint256 minStake) internal pure returns (uint256) {
        uint256 stake = (workerpoolPrice * workerStakeRatio) / 100;
        return stake < minStake ? minStake : stake;
    }

    /// @notice Stake the scheduler locks per task.
    function schedulerStake(uint256 workerpoolPrice) internal pure returns (uint256) {
        return (workerpoolPrice * SCHEDULER_STAKE_RATIO) / 100;
    }

    /// @notice Splits the pool price between `winners` workers and the scheduler (who also gets the rounding dust).
    function split(uint256 workerpoolPrice, uint256 schedulerRewardRatio, uint256 winners)
        internal
        pure
        returns (uint256 perWorker, uint256 toScheduler)
    {
        uint256 workersPart = workerpoolPrice - (workerpoolPrice * schedulerRewardRatio) / 100;
        perWorker = workersPart / winners;
        toScheduler = workerpoolPrice - perWorker * winners;
    }

    /// @notice The kitty reward: `min(kitty, max(kittyMin, kitty·KITTY_RATIO/100), seizedByTask)`.
    /// @dev Capped by the stakes the finalized task itself seized: a scheduler earns from the kitty only for liars
    /// (or silent winners) it caught, so a self-dealt task can never take out more than it put in and the kitty cannot
    /// be drained.
    function kittyReward(uint256 kitty, uint256 kittyMin, uint256 seizedByTask) internal pure returns (uint256) {
        uint256 reward = (kitty * KITTY_RATIO) / 100;
        if (reward < kittyMin) reward = kittyMin;
        if (reward > kitty) reward = kitty;
        return reward < seizedByTask ? reward : seizedByTask;
    }
}
